/**
 * The application JWT every Enable Banking request carries (its API reference, "Authorization"):
 * header `{ typ: "JWT", alg: "RS256", kid: <application id> }`, claims `iss` "enablebanking.com",
 * `aud` "api.enablebanking.com", `iat` and `exp`, a lifetime of at most 86 400 s. Its times are the
 * upstream's real clock, never Mooring's domain clock. Shared by the adapter, the probe and the
 * sandbox counterpart (which verifies what the adapter signs).
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { EnableBankingSettings } from '../settings.ts';

export const EB_JWT_ISSUER = 'enablebanking.com';
export const EB_JWT_AUDIENCE = 'api.enablebanking.com';
/** "Tokens created with longer TTL are not accepted by the API." */
export const EB_JWT_MAX_TTL_S = 86_400;
/** Mooring's tokens live an hour (as Enable Banking's own samples do)… */
export const EB_JWT_TTL_S = 3_600;
/** …and are replaced this long before they expire, so that no call carries one about to lapse. */
const EB_JWT_RENEW_BEFORE_S = 300;

export interface ApplicationJwtOptions {
  /** Seconds since the epoch for `iat` (real time). */
  issuedAt: number;
  ttlSeconds?: number;
}

/** Signs one application JWT with the application's RS256 key. */
export async function signApplicationJwt(applicationId: string, privateKey: KeyObject, opts: ApplicationJwtOptions): Promise<string> {
  const ttl = opts.ttlSeconds ?? EB_JWT_TTL_S;
  return new SignJWT({})
    .setProtectedHeader({ typ: 'JWT', alg: 'RS256', kid: applicationId })
    .setIssuer(EB_JWT_ISSUER)
    .setAudience(EB_JWT_AUDIENCE)
    .setIssuedAt(opts.issuedAt)
    .setExpirationTime(opts.issuedAt + ttl)
    .sign(privateKey);
}

/** Application JWTs per provider, each reused until shortly before it expires. */
export function applicationJwtCache(realNow: () => number): { get(providerId: string, settings: EnableBankingSettings): Promise<string> } {
  const cache = new Map<string, { jwt: string; renewAtMs: number; applicationId: string; pem: string }>();
  const keys = new Map<string, KeyObject>();
  return {
    async get(providerId, settings) {
      const now = realNow();
      const cached = cache.get(providerId);
      if (cached !== undefined && cached.renewAtMs > now && cached.applicationId === settings.applicationId && cached.pem === settings.privateKey) return cached.jwt;
      let key = keys.get(settings.privateKey);
      if (key === undefined) {
        key = createPrivateKey(settings.privateKey);
        keys.set(settings.privateKey, key);
      }
      const issuedAt = Math.floor(now / 1000);
      const jwt = await signApplicationJwt(settings.applicationId, key, { issuedAt });
      cache.set(providerId, { jwt, renewAtMs: (issuedAt + EB_JWT_TTL_S - EB_JWT_RENEW_BEFORE_S) * 1000, applicationId: settings.applicationId, pem: settings.privateKey });
      return jwt;
    },
  };
}
