/**
 * The operator's side of a GoCardless entry: the README example (README.md's GoCardless section) passes
 * `npx mooring providers check`, and `npx mooring providers probe <name>` against the running
 * sandbox counterpart issues a token pair and reads the institution's limits, or says what to fix.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_GC_SECRET_ID, SANDBOX_GC_SECRET_KEY } from '../../src/sandbox/banks/index.ts';
import { mooringCommand } from '../helpers/processes.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let ts: TestServer;
let dir: string;

beforeAll(async () => {
  ts = await startTestServer();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mooring-gc-probe-'));
});
afterAll(async () => {
  await ts?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The README's example entry, with its settings changed as given. */
function readmeExample(change: Record<string, string> = {}, consentDays?: number): string {
  const readme = fs.readFileSync(path.join(import.meta.dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### GoCardless Bank Account Data'));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  if (yaml === undefined) throw new Error("README.md's GoCardless section has no YAML example");
  let text = yaml;
  for (const [k, v] of Object.entries(change)) {
    text = new RegExp(`^      ${k}:`, 'm').test(text) ? text.replace(new RegExp(`^      ${k}:.*$`, 'm'), `      ${k}: ${v}`) : text.replace('    settings:\n', `    settings:\n      ${k}: ${v}\n`);
  }
  if (consentDays !== undefined) text = text.replace(/^ {4}consentDays: .*$/m, `    consentDays: ${consentDays}`);
  const file = path.join(dir, `p-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, text);
  return file;
}

const NAME = 'Example Bank (GoCardless)';
const env = (key = SANDBOX_GC_SECRET_KEY) => ({ GOCARDLESS_SECRET_ID: SANDBOX_GC_SECRET_ID, GOCARDLESS_SECRET_KEY: key, MOORING_SANDBOX: 'false' });

describe('a GoCardless entry', () => {
  it('the README example passes providers check', async () => {
    const r = await mooringCommand(['providers', 'check', readmeExample()], env());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`${NAME}: id`);
    expect(r.stdout).toContain('adapter gocardless');
  });

  it('the README\'s settings for the sandbox counterpart pass providers check and probe', async () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### GoCardless Bank Account Data'));
    const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    const settings = blocks.find((b) => b.includes('/sandbox/gocardless/api/v2'));
    expect(settings, "README.md's GoCardless section has no sandbox counterpart example").toBeDefined();
    const file = path.join(dir, 'sandbox-counterpart.yaml');
    fs.writeFileSync(file, `providers:\n  - name: ${NAME}\n    type: api\n    adapter: gocardless\n${(settings ?? '').replace('http://localhost:3000', ts.baseUrl)}`);
    const checked = await mooringCommand(['providers', 'check', file], env());
    expect(checked.code, checked.stdout + checked.stderr).toBe(0);
    const probed = await mooringCommand(['providers', 'probe', NAME, '--file', file], env());
    expect(probed.code, probed.stdout + probed.stderr).toBe(0);
    expect(probed.stdout).toMatch(/ok +token pair:/);
  });

  it('probe issues a token pair and prints the institution\'s limits (and what they cap)', async () => {
    const file = readmeExample({ apiUrl: `${ts.baseUrl}/sandbox/gocardless/api/v2`, institutionId: 'MOORING_STRICT_MSTR0000' }, 120);
    const r = await mooringCommand(['providers', 'probe', NAME, '--file', file], env());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ok +token pair:/);
    expect(r.stdout).toMatch(/ok +institution: Mooring Strict Bank \(MOORING_STRICT_MSTR0000\): max_access_valid_for_days 90, transaction_total_days 730; consentDays 120 will be capped at 90/);
  });

  it('probe says what to fix for a wrong secret key or an unknown institution', async () => {
    const wrongKey = await mooringCommand(['providers', 'probe', NAME, '--file', readmeExample({ apiUrl: `${ts.baseUrl}/sandbox/gocardless/api/v2` })], env('wrong'));
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stdout).toMatch(/FAIL token pair: HTTP 401/);
    expect(wrongKey.stdout).toContain('copy settings.secretId and settings.secretKey again');
    const unknown = await mooringCommand(['providers', 'probe', NAME, '--file', readmeExample({ apiUrl: `${ts.baseUrl}/sandbox/gocardless/api/v2`, institutionId: 'NO_SUCH_BANK' })], env());
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toMatch(/FAIL institution: NO_SUCH_BANK: HTTP 404/);
    expect(unknown.stdout).toContain('GET /institutions/?country=gb');
  });
});
