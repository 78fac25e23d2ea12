/**
 * MOORING_ENCRYPTION_KEY (SPEC section 1): validated at start-up, required with PostgreSQL,
 * generated once and kept (owner-only) in the data directory in embedded mode; and the sealed
 * box it keys: a value opens only under its own row's context and a key that is configured.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createServer } from '../../src/server.ts';
import { createSecretBox, decodeKey, keyId, newEncryptionKey, SecretError } from '../../src/crypto/secrets.ts';
import { ADMIN_TOKEN } from '../helpers/server.ts';
import { provideTestPki } from '../helpers/pki.ts';

function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('the encryption key setting', () => {
  it('accepts what `openssl rand -base64 32` prints, and nothing shorter or malformed', () => {
    expect(configProblems({ MOORING_ENCRYPTION_KEY: newEncryptionKey() })).toEqual([]);
    for (const bad of ['short', Buffer.alloc(16, 1).toString('base64'), Buffer.alloc(33, 1).toString('base64'), 'not base64 at all!!']) {
      const problems = configProblems({ MOORING_ENCRYPTION_KEY: bad });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^MOORING_ENCRYPTION_KEY must be 32 random bytes in base64 \(make one with: openssl rand -base64 32\)/);
    }
  });

  it('is required with DATABASE_URL, with a message saying how to make one', () => {
    const problems = configProblems({ DATABASE_URL: 'postgres://db.example/mooring' });
    expect(problems).toEqual([expect.stringMatching(/^MOORING_ENCRYPTION_KEY is required with DATABASE_URL \(make one with: openssl rand -base64 32/)]);
    expect(configProblems({ DATABASE_URL: 'postgres://db.example/mooring', MOORING_ENCRYPTION_KEY: newEncryptionKey() })).toEqual([]);
  });

  it('checks every previous key too', () => {
    const problems = configProblems({ MOORING_ENCRYPTION_KEY: newEncryptionKey(), MOORING_ENCRYPTION_PREVIOUS_KEYS: `${newEncryptionKey()},oops` });
    expect(problems).toEqual([expect.stringMatching(/^MOORING_ENCRYPTION_PREVIOUS_KEYS entry 2 must be 32 bytes in base64/)]);
  });
});

describe('the sealed box', () => {
  const oldKey = decodeKey(newEncryptionKey()) as Buffer;
  const newKey = decodeKey(newEncryptionKey()) as Buffer;

  it('opens a value only for the row it was sealed for', () => {
    const box = createSecretBox(newKey);
    const sealed = box.seal('bank-refresh-token', 'connections.provider_grant:a');
    expect(sealed).toMatch(new RegExp(`^v1\\.${keyId(newKey)}\\.[\\w-]+\\.[\\w-]+$`));
    expect(sealed).not.toContain('bank-refresh-token');
    expect(box.open(sealed, 'connections.provider_grant:a')).toBe('bank-refresh-token');
    expect(() => box.open(sealed, 'connections.provider_grant:b')).toThrow(SecretError);
    const [v, kid, iv, body = ''] = sealed.split('.');
    const flipped = `${body.slice(0, -2)}${body.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(() => box.open([v, kid, iv, flipped].join('.'), 'connections.provider_grant:a')).toThrow(SecretError);
  });

  it('reads values under a previous key, writes under the current one, and names a key it lacks', () => {
    const before = createSecretBox(oldKey).seal('s', 'ctx');
    const after = createSecretBox(newKey, [oldKey]);
    expect(after.open(before, 'ctx')).toBe('s');
    expect(after.kidOf(after.seal('s', 'ctx'))).toBe(keyId(newKey));
    expect(() => createSecretBox(newKey).open(before, 'ctx')).toThrow(new RegExp(`key ${keyId(oldKey)}, which is not configured`));
  });
});

describe('the key in embedded mode', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mooring-key-'));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('is generated on first start, readable by the owner only, and kept across restarts', async () => {
    provideTestPki(dataDir);
    const config = loadConfig({}, { adminToken: ADMIN_TOKEN, dataDir, databaseUrl: null, encryptionKey: null });
    const file = path.join(dataDir, 'encryption-key');
    const kids: string[] = [];
    for (let start = 0; start < 2; start += 1) {
      const server = await createServer({ config, logger: createLogger('silent'), adminToken: ADMIN_TOKEN, jobs: false, role: 'worker' });
      try {
        const r = await server.db.query<{ value: string }>("select value #>> '{}' as value from settings where key = 'server_keys'");
        kids.push(r.rows[0]?.value.split('.')[1] ?? '');
      } finally {
        await server.close();
      }
    }
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const key = decodeKey(fs.readFileSync(file, 'utf8'));
    expect(key).not.toBeNull();
    expect(kids).toEqual([keyId(key as Buffer), keyId(key as Buffer)]);
  });
});
