/**
 * `npx mooring providers probe <name>` against a running sandbox FAPI bank, configured as README's
 * "Try it against the sandbox bank first" shows: every step works; and what it says when the
 * client id, the transport certificate or the discovery URL are wrong.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mooringCommand } from '../helpers/processes.ts';
import { TEST_DATA_DIR, testPki } from '../helpers/pki.ts';
import { freePort, startTestServer, type TestServer } from '../helpers/server.ts';

let ts: TestServer;
let dir: string;
let mtlsPort: number;

beforeAll(async () => {
  testPki();
  mtlsPort = await freePort();
  ts = await startTestServer({ sandboxMtlsPort: mtlsPort });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mooring-probe-'));
});
afterAll(async () => {
  await ts?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const pki = (f: string): string => path.join(TEST_DATA_DIR, 'sandbox-pki', f);

/** A providers file in README's form for the sandbox bank `nationwide`, with `change` applied to its settings. */
function providersFile(name: string, change: Record<string, string> = {}): string {
  const settings: Record<string, string> = {
    wellKnownUrl: `${ts.baseUrl}/sandbox/ob/nationwide/.well-known/openid-configuration`,
    resourceBaseUrl: `https://127.0.0.1:${mtlsPort}/sandbox/ob/nationwide/open-banking/v3.1/aisp`,
    clientId: 'mooring',
    tokenEndpointAuthMethod: 'private_key_jwt',
    signingKey: `{ file: ${pki('signing.key')} }`,
    signingKeyId: `{ file: ${pki('signing.kid')} }`,
    transportCert: `{ file: ${pki('client.crt')} }`,
    transportKey: `{ file: ${pki('client.key')} }`,
    ca: `{ file: ${pki('ca.crt')} }`,
    responseType: 'code id_token',
    ...change,
  };
  const file = path.join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
  fs.writeFileSync(file, [
    'providers:',
    `  - name: ${name}`,
    '    type: api',
    '    adapter: openbanking',
    '    accountTypes: [{ name: cash:current, beta: false }]',
    '    settings:',
    ...Object.entries(settings).map(([k, v]) => `      ${k}: ${v}`),
    '',
  ].join('\n'));
  return file;
}

const probe = (name: string, file: string) => mooringCommand(['providers', 'probe', name, '--file', file], { MOORING_SANDBOX: 'false' });

describe('mooring providers probe', () => {
  it('reaches a good bank: discovery, keys, a client-credentials token over mutual TLS, the account information API', async () => {
    const r = await probe('My Test Bank', providersFile('My Test Bank'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const step of ['transport certificate', 'signing key', 'discovery', 'bank keys', 'client-credentials token', 'account information API']) {
      expect(r.stdout).toMatch(new RegExp(`ok +${step}:`));
    }
    expect(r.stdout).toContain('(mTLS alias)');
    expect(r.stdout).toContain('users can connect to it');
  });

  it('says the client id is not accepted, and what to check', async () => {
    const r = await probe('Wrong Client', providersFile('Wrong Client', { clientId: 'not-registered-here' }));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL client-credentials token: .*invalid_client/);
    expect(r.stdout).toContain('check settings.clientId');
    expect(r.stdout).toMatch(/ok +discovery:/);
  });

  it('says the transport certificate is not the one the bank trusts when it presents another', async () => {
    const other = path.join(dir, 'other');
    fs.mkdirSync(other, { recursive: true });
    const { execFileSync } = await import('node:child_process');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(other, 'k.pem'), '-out', path.join(other, 'c.pem'), '-subj', '/CN=stranger', '-days', '2'], { stdio: 'ignore' });
    const r = await probe('Stranger', providersFile('Stranger', { transportCert: `{ file: ${path.join(other, 'c.pem')} }`, transportKey: `{ file: ${path.join(other, 'k.pem')} }` }));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL client-credentials token:/);
  });

  it('says where discovery failed and what to check when the bank cannot be reached', async () => {
    const closed = await freePort();
    const r = await probe('Gone Bank', providersFile('Gone Bank', { wellKnownUrl: `http://127.0.0.1:${closed}/.well-known/openid-configuration` }));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL discovery: .*127\.0\.0\.1/);
    expect(r.stdout).toContain('check settings.wellKnownUrl');
  });

  it('names the providers it knows when asked for one it does not', async () => {
    const r = await probe('Nobody', providersFile('Somebody'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no provider named "Nobody"');
    expect(r.stderr).toContain('Somebody');
  });
});
