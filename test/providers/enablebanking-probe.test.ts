/**
 * `npx mooring providers check` and `probe <name>` for an Enable Banking entry written as
 * README.md's Enable Banking section shows, pointed at a running server's sandbox counterpart: every step
 * works (the JWT, the application with the callback whitelisted, the bank and its maximum consent
 * validity); and what the probe says when the application id, the key or the bank name are wrong.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applicationKey, enableBankingEntry } from '../helpers/enablebanking.ts';
import { mooringCommand } from '../helpers/processes.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const APP = 'd1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6';
const KEY = applicationKey();

let ts: TestServer;
let dir: string;

beforeAll(async () => {
  ts = await startTestServer({}, { providers: (urls) => [enableBankingEntry(urls, { name: 'Registered EB', applicationId: APP, privateKey: KEY })] });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mooring-eb-probe-'));
  fs.writeFileSync(path.join(dir, `${APP}.pem`), KEY, { mode: 0o600 });
});
afterAll(async () => {
  await ts?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The documentation's example entry, pointed at the test server's sandbox counterpart, with `change` applied. */
function providersFile(name: string, change: { applicationId?: string; keyFile?: string; bank?: string } = {}): string {
  const file = path.join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
  fs.writeFileSync(file, [
    'providers:',
    `  - name: ${name}`,
    '    type: api',
    '    adapter: enablebanking',
    '    consentDays: 90',
    '    accountTypes:',
    '      - { name: "cash:current", beta: false }',
    '      - { name: savings, beta: false }',
    '    settings:',
    `      apiUrl: ${ts.baseUrl}/sandbox/enablebanking`,
    `      applicationId: ${change.applicationId ?? APP}`,
    `      privateKey: { file: ${change.keyFile ?? `${APP}.pem`} }`,
    `      aspsp: { name: "${change.bank ?? 'Mooring Sandbox Bank'}", country: GB }`,
    '      psuType: personal',
    '',
  ].join('\n'));
  return file;
}

const env = (): Record<string, string> => ({ MOORING_SANDBOX: 'false', PUBLIC_URL: ts.baseUrl });
const probe = (name: string, file: string) => mooringCommand(['providers', 'probe', name, '--file', file], env());

describe('mooring providers check and probe for Enable Banking', () => {
  it('the example entry passes providers check', async () => {
    const r = await mooringCommand(['providers', 'check', providersFile('Checked EB')], env());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Checked EB');
  });

  it('reaches a good application: the JWT, the application with the callback whitelisted, the bank and its maximum consent validity', async () => {
    const r = await probe('Good EB', providersFile('Good EB'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const step of ['application JWT', 'application', 'redirect URL', 'bank']) expect(r.stdout).toMatch(new RegExp(`ok +${step}:`));
    expect(r.stdout).toContain('allows consents of up to 90 days');
    expect(r.stdout).toContain('users can connect to it');
  });

  it('says the application is not accepted, and to check the application id and key', async () => {
    const r = await probe('Unknown App', providersFile('Unknown App', { applicationId: 'e0e0e0e0-0000-4000-8000-000000000000' }));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL application: .*401 UNAUTHORIZED_ACCESS/);
    expect(r.stdout).toContain('settings.applicationId');
  });

  it('says the application is not accepted when the key is not the application\'s', async () => {
    fs.writeFileSync(path.join(dir, 'other.pem'), applicationKey(), { mode: 0o600 });
    const r = await probe('Wrong Key', providersFile('Wrong Key', { keyFile: 'other.pem' }));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/ok +application JWT:/);
    expect(r.stdout).toMatch(/FAIL application:/);
  });

  it('says the bank is not listed under that name', async () => {
    const r = await probe('Wrong Bank', providersFile('Wrong Bank', { bank: 'Mooring Sandbox' }));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL bank: no bank named "Mooring Sandbox" in GB/);
    expect(r.stdout).toContain('similar: Mooring Sandbox Bank');
  });
});
