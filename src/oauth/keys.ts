/**
 * Key material that must survive restarts and be shared by every API process: the provider's
 * signing keys (JWKS) and the cookie-signing keys. Created once, stored in `settings`.
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Db } from '../db/db.ts';
import { sealedSettingOrCreate } from '../db/settings.ts';
import type { SecretBox } from '../crypto/secrets.ts';

export interface ServerKeys {
  /** Private signing keys (RS256 first: the default ID token algorithm). */
  jwks: { keys: JWK[] };
  cookieKeys: string[];
}

async function newKeys(): Promise<ServerKeys> {
  const keys: JWK[] = [];
  for (const alg of ['RS256', 'PS256', 'ES256'] as const) {
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = await exportJWK(privateKey);
    keys.push({ ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}` });
  }
  return { jwks: { keys }, cookieKeys: [randomBytes(32).toString('base64url')] };
}

/** Loads the server's keys, creating them on first start. Safe when several processes start at once. */
export async function loadOrCreateKeys(db: Db, box: SecretBox): Promise<ServerKeys> {
  return (await sealedSettingOrCreate(db, 'server_keys', box, newKeys)).value;
}
