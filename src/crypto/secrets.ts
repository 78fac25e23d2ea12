/**
 * Secrets at rest: a sealed box (AES-256-GCM) for values Mooring must read back (bank grants,
 * client secrets, webhook secrets), and a one-way hash for bearer values it only has to recognise.
 *
 * A sealed value reads `v1.<kid>.<iv>.<ciphertext+tag>` (base64url parts). The key id is a short
 * hash of the key, so old keys stay usable for reading without naming them anywhere. Associated
 * data binds each value to its row and column: a ciphertext copied to another row does not open.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export const ENCRYPTION_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1';

/** Decodes a key as `openssl rand -base64 32` prints it; null when it is not 32 bytes of base64. */
export function decodeKey(text: string): Buffer | null {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) return null;
  const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return key.length === ENCRYPTION_KEY_BYTES ? key : null;
}

/** A new key, in the form MOORING_ENCRYPTION_KEY takes. */
export const newEncryptionKey = (): string => randomBytes(ENCRYPTION_KEY_BYTES).toString('base64');

/** The short, public name of a key: the first 8 hex digits of its SHA-256. */
export const keyId = (key: Buffer): string => createHash('sha256').update(key).digest('hex').slice(0, 8);

/** SHA-256 of a bearer value (a token, a session id): stored and looked up instead of the value. */
export const hashSecret = (raw: string): string => createHash('sha256').update(raw).digest('base64url');

export class SecretError extends Error {}

export interface SecretBox {
  /** Key id new values are sealed under. */
  readonly currentKid: string;
  seal(plaintext: string, context: string): string;
  /** Opens a sealed value; throws SecretError when no known key opens it under this context. */
  open(sealed: string, context: string): string;
  isSealed(value: string): boolean;
  /** The key id a sealed value carries (null for anything else). */
  kidOf(value: string): string | null;
}

export function createSecretBox(current: Buffer, previous: readonly Buffer[] = []): SecretBox {
  const keys = new Map<string, Buffer>();
  for (const k of [current, ...previous]) {
    if (k.length !== ENCRYPTION_KEY_BYTES) throw new SecretError(`an encryption key must be ${ENCRYPTION_KEY_BYTES} bytes`);
    if (!keys.has(keyId(k))) keys.set(keyId(k), k);
  }
  const currentKid = keyId(current);
  const parts = (value: string): string[] | null => {
    const p = value.split('.');
    return p.length === 4 && p[0] === VERSION ? p : null;
  };
  return {
    currentKid,
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current, iv);
      cipher.setAAD(Buffer.from(`${currentKid}|${context}`));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `${VERSION}.${currentKid}.${iv.toString('base64url')}.${body.toString('base64url')}`;
    },
    open(sealed, context) {
      const p = parts(sealed);
      if (p === null) throw new SecretError('not a sealed value');
      const [, kid = '', ivText = '', bodyText = ''] = p;
      const key = keys.get(kid);
      if (key === undefined) throw new SecretError(`sealed under key ${kid}, which is not configured (add it to MOORING_ENCRYPTION_PREVIOUS_KEYS)`);
      const iv = Buffer.from(ivText, 'base64url');
      const body = Buffer.from(bodyText, 'base64url');
      if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw new SecretError('malformed sealed value');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv);
        decipher.setAAD(Buffer.from(`${kid}|${context}`));
        decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
        return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretError(`sealed value does not open with key ${kid} for ${context}`);
      }
    },
    isSealed: (value) => parts(value) !== null,
    kidOf: (value) => parts(value)?.[1] ?? null,
  };
}
