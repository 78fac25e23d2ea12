/**
 * Where the encryption key comes from: MOORING_ENCRYPTION_KEY, or (embedded mode only) a key
 * generated on first start and kept in the data directory, readable by the owner only.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import { createSecretBox, decodeKey, newEncryptionKey, type SecretBox } from './secrets.ts';

export const encryptionKeyPath = (dataDir: string): string => path.join(dataDir, 'encryption-key');

function mustDecode(text: string, what: string): Buffer {
  const key = decodeKey(text);
  if (key === null) throw new Error(`${what} is not 32 bytes of base64 (make one with: openssl rand -base64 32)`);
  return key;
}

export function resolveSecretBox(config: Config): { box: SecretBox; source: 'env' | 'file' | 'generated' } {
  const previous = config.previousEncryptionKeys.map((k, i) => mustDecode(k, `MOORING_ENCRYPTION_PREVIOUS_KEYS entry ${i + 1}`));
  if (config.encryptionKey !== null) {
    return { box: createSecretBox(mustDecode(config.encryptionKey, 'MOORING_ENCRYPTION_KEY'), previous), source: 'env' };
  }
  if (config.databaseUrl !== null) throw new Error('MOORING_ENCRYPTION_KEY is required with DATABASE_URL (make one with: openssl rand -base64 32)');
  const file = encryptionKeyPath(config.dataDir);
  if (fs.existsSync(file)) {
    return { box: createSecretBox(mustDecode(fs.readFileSync(file, 'utf8'), file), previous), source: 'file' };
  }
  fs.mkdirSync(config.dataDir, { recursive: true });
  const text = newEncryptionKey();
  // wx: two processes starting at once must not each write their own key.
  try {
    fs.writeFileSync(file, `${text}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { box: createSecretBox(mustDecode(fs.readFileSync(file, 'utf8'), file), previous), source: 'file' };
  }
  return { box: createSecretBox(mustDecode(text, file), previous), source: 'generated' };
}
