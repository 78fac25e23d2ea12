/**
 * The Enable Banking sandbox counterpart's application authentication: every API call carries an
 * application JWT (Enable Banking's API reference, "Authorization") that must verify in full —
 * RS256 with the registered application's public key (found by `kid`), `typ` JWT, `iss`
 * "enablebanking.com", `aud` "api.enablebanking.com", unexpired, and a lifetime of at most
 * 86 400 s. The registered applications are the catalog's `enablebanking` entries: their
 * `applicationId` and the public half of their `privateKey`. Refusals are ErrorResponses.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import type { Catalog } from '../../providers/catalog.ts';
import { EB_JWT_AUDIENCE, EB_JWT_ISSUER, EB_JWT_MAX_TTL_S } from '../../providers/enablebanking/jwt.ts';
import { BankError, type SandboxBankDeps } from './http.ts';

export interface EbApplication {
  applicationId: string;
  keys: KeyObject[];
}

export type EbDeps = SandboxBankDeps & { enableBanking: { publicUrl: string; applications: Catalog } };

/** Enable Banking's ErrorResponse; an error that is not one of its codes is WRONG_REQUEST_PARAMETERS. */
export function ebError(status: number, error: string, message: string): BankError {
  return new BankError(status, error, message);
}

const unauthorized = (why: string): BankError => ebError(401, 'UNAUTHORIZED_ACCESS', why);

const publicKeys = new Map<string, KeyObject>();
const publicKeyOf = (pem: string): KeyObject => {
  let key = publicKeys.get(pem);
  if (key === undefined) {
    key = createPublicKey(createPrivateKey(pem));
    publicKeys.set(pem, key);
  }
  return key;
};

/** The registered applications: each providers-file entry of the Enable Banking adapter. */
function applicationOf(catalog: Catalog, applicationId: string): EbApplication | null {
  const keys = catalog.all().flatMap((e) => (e.enablebanking?.applicationId === applicationId ? [publicKeyOf(e.enablebanking.privateKey)] : []));
  return keys.length === 0 ? null : { applicationId, keys };
}

const applications = new WeakMap<FastifyRequest, EbApplication>();

/** Remembers the application a request's JWT proved. */
export function setApplicationOfRequest(req: FastifyRequest, app: EbApplication): void {
  applications.set(req, app);
}

/** Verifies the request's application JWT in full; answers the application or throws the refusal. */
export async function verifyApplicationJwt(catalog: Catalog, token: string | null, realNow: Date): Promise<EbApplication> {
  if (token === null) throw ebError(401, 'AUTHORIZATION_NOT_PROVIDED', 'Authorization header with a Bearer JWT is required');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw unauthorized('The authorization token is not a JWT');
  }
  if (header.alg !== 'RS256') throw unauthorized('Only RS256 is supported');
  if (header.typ !== 'JWT') throw unauthorized('The JWT header must have typ JWT');
  if (typeof header.kid !== 'string') throw unauthorized('The JWT header must name the application in kid');
  const app = applicationOf(catalog, header.kid);
  if (app === null) throw unauthorized('No application has this kid');
  let payload: { iat?: number; exp?: number } | undefined;
  for (const key of app.keys) {
    try {
      payload = (await jwtVerify(token, key, {
        algorithms: ['RS256'], issuer: EB_JWT_ISSUER, audience: EB_JWT_AUDIENCE, typ: 'JWT', currentDate: realNow, requiredClaims: ['iat', 'exp'],
      })).payload;
      break;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' && key !== app.keys.at(-1)) continue;
      throw unauthorized(`The JWT is not valid (${err instanceof Error ? err.message : 'unreadable'})`);
    }
  }
  if (payload?.iat === undefined || payload.exp === undefined) throw unauthorized('The JWT must have iat and exp');
  if (payload.exp - payload.iat > EB_JWT_MAX_TTL_S) throw unauthorized(`Maximum allowed time-to-live for token is ${EB_JWT_MAX_TTL_S} seconds`);
  return app;
}

export function applicationOfRequest(req: FastifyRequest): EbApplication {
  const app = applications.get(req);
  if (app === undefined) throw unauthorized('No application');
  return app;
}

