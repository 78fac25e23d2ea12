/**
 * The operator's providers file (SPEC section 10): a good YAML or JSON file puts its providers in
 * the catalog next to the sandbox's; a bad one stops start-up naming the entry and the field; and
 * `mooring providers check` says the same without starting anything. Keys and certificates are
 * made by Debian's openssl for each run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { officialClient } from '../helpers/moneyhub.ts';
import { killAllMooring, mooringCommand, spawnMooring, type ExitInfo } from '../helpers/processes.ts';
import { ADMIN_TOKEN, freePort, startTestServer, TEST_ENCRYPTION_KEY } from '../helpers/server.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { DOMAIN_START } from '../helpers/time.ts';

const START_TIMEOUT_MS = 120_000;
const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';
const ACME_ID = '0a1b2c3d4e5f60718293a4b5c6d7e8f9';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mooring-providers-file-'));
const at = (name: string): string => path.join(dir, name);
let signingKeyPem = '';

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

beforeAll(() => {
  execFileSync('mkdir', ['-p', at('certs')]);
  openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', at('certs/signing.key'));
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('certs/transport.key'), '-out', at('certs/transport.pem'), '-days', '30', '-subj', '/CN=mooring-test-transport');
  openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', at('certs/other.key'));
  signingKeyPem = execFileSync('cat', [at('certs/signing.key')], { encoding: 'utf8' });
  writeFileSync(at('certs/not-a-key.pem'), '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n');
});

afterAll(async () => {
  await killAllMooring();
  rmSync(dir, { recursive: true, force: true });
});

/** Acme with an explicit id (its signing key from the environment), Bravo with an id hashed from its name; transport from defaults. */
const GOOD_YAML = `
defaults:
  consentDays: 60
  settings:
    tokenEndpointAuthMethod: private_key_jwt
    transportCert: { file: certs/transport.pem }
    transportKey: { file: certs/transport.key }
providers:
  - name: Acme Bank
    id: "${ACME_ID}"
    type: api
    adapter: openbanking
    accountTypes: [{ name: "cash:current", beta: false }]
    iconUrl: https://acme.example/icon.png
    settings:
      wellKnownUrl: https://auth.acme.example/.well-known/openid-configuration
      resourceBaseUrl: https://api.acme.example/open-banking/v3.1/aisp
      clientId: mooring-at-acme
      signingKey: { env: ACME_SIGNING_KEY }
      signingKeyId: acme-kid-1
  - name: Bravo Building Society
    type: api
    adapter: openbanking
    consentDays: null
    isBeta: true
    settings:
      wellKnownUrl: https://auth.bravo.example/.well-known/openid-configuration
      resourceBaseUrl: https://api.bravo.example/open-banking/v3.1/aisp
      clientId: { env: BRAVO_CLIENT_ID }
      tokenEndpointAuthMethod: tls_client_auth
      signingKey: { file: certs/signing.key }
      signingKeyId: bravo-kid
      responseType: code
`;

const goodEnv = (): Record<string, string> => ({ ACME_SIGNING_KEY: signingKeyPem, BRAVO_CLIENT_ID: 'mooring-at-bravo' });

/** An openbanking entry in JSON with `settings` overridden (null deletes a field). */
function jsonFile(name: string, entries: Record<string, unknown>[]): string {
  writeFileSync(at(name), JSON.stringify({ providers: entries }, null, 2));
  return at(name);
}

const obEntry = (name: string, settings: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> => {
  const base: Record<string, unknown> = {
    wellKnownUrl: 'https://auth.charlie.example/.well-known/openid-configuration',
    resourceBaseUrl: 'https://api.charlie.example/open-banking/v3.1/aisp',
    clientId: 'mooring-at-charlie',
    tokenEndpointAuthMethod: 'private_key_jwt',
    signingKey: { file: 'certs/signing.key' },
    signingKeyId: 'charlie-kid',
    transportCert: { file: 'certs/transport.pem' },
    transportKey: { file: 'certs/transport.key' },
  };
  for (const [k, v] of Object.entries(settings)) {
    if (v === null) delete base[k];
    else base[k] = v;
  }
  return { name, type: 'api', adapter: 'openbanking', settings: base, ...extra };
};

/** `node src/main.ts start` with a providers file; answers how it exited and what it printed (it must not start). */
async function failedStart(file: string, env: Record<string, string> = {}): Promise<{ exit: ExitInfo; output: string }> {
  const port = await freePort();
  const p = spawnMooring('bad-providers', ['start'], {
    PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: `http://127.0.0.1:${port}`, MOORING_DATA_DIR: at('never-used'),
    MOORING_ADMIN_TOKEN: ADMIN_TOKEN, MOORING_PROVIDERS_FILE: file, ...env,
  });
  const timer = setTimeout(() => void p.stop('SIGKILL'), 60_000);
  const exit = await p.exited;
  clearTimeout(timer);
  return { exit, output: p.output() };
}

describe('a good providers file', () => {
  let testDb: TestDb | null = null;
  afterAll(async () => {
    await killAllMooring();
    await testDb?.drop();
  });

  it('YAML: a started server lists its providers, with explicit and hashed ids; the sandbox is off unless MOORING_SANDBOX=true', async () => {
    writeFileSync(at('good.yaml'), GOOD_YAML);
    const checked = await mooringCommand(['providers', 'check', at('good.yaml')], goodEnv());
    expect(checked.code, checked.stderr).toBe(0);
    const bravoLine = /Bravo Building Society: id ([0-9a-f]{32}), adapter openbanking, consentDays none/.exec(checked.stdout);
    expect(bravoLine, checked.stdout).not.toBeNull();
    const bravoId = bravoLine?.[1] ?? '';

    testDb = await createTestDb();
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const storage: Record<string, string> = testDb.url === null ? { MOORING_DATA_DIR: at('data') } : { DATABASE_URL: testDb.url, MOORING_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY };
    const server = spawnMooring('good-providers', ['start'], {
      PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: baseUrl, MOORING_ADMIN_TOKEN: ADMIN_TOKEN, MOORING_SANDBOX_CLOCK_START: DOMAIN_START.toISOString(),
      MOORING_PROVIDERS_FILE: at('good.yaml'), ...storage, ...goodEnv(),
    });
    await server.waitForOutput(/Mooring is running at/, START_TIMEOUT_MS);
    expect(server.output()).toContain(`providers: 2 from ${at('good.yaml')}`);

    const { mh } = await officialClient(baseUrl, 'client_secret_basic');
    const listed = await mh.listConnections();
    const acme = listed.find((c) => c.name === 'Acme Bank');
    expect(acme).toMatchObject({ id: ACME_ID, type: 'api', iconUrl: 'https://acme.example/icon.png', accountTypes: [{ name: 'cash:current', beta: false }], isBeta: false, userTypes: ['personal'] });
    const bravo = listed.find((c) => c.name === 'Bravo Building Society');
    expect(bravo).toMatchObject({ id: bravoId, type: 'api', isBeta: true, accountTypes: [] });
    // A real provider is configured and MOORING_SANDBOX is not set: no sandbox banks, no sandbox control API.
    expect(server.output()).toContain('sandbox:   off');
    expect(listed.find((c) => c.name === 'Modelo Open Banking Mock')).toBeUndefined();
    expect(listed.map((c) => c.name).sort()).toEqual(['Acme Bank', 'Bravo Building Society']);
    expect((await mh.listBetaConnections()).map((c) => c.name)).toContain('Bravo Building Society');
    const clock = await fetch(`${baseUrl}/sandbox/clock`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(clock.status).toBe(404);
    await server.stop();

    // MOORING_SANDBOX=true, said explicitly, serves the sandbox next to the file's providers; they keep their ids.
    const sandboxPort = await freePort();
    const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
    const withSandbox = spawnMooring('good-providers-sandbox', ['start'], {
      PORT: String(sandboxPort), HOST: '127.0.0.1', PUBLIC_URL: sandboxUrl, MOORING_ADMIN_TOKEN: ADMIN_TOKEN, MOORING_SANDBOX_CLOCK_START: DOMAIN_START.toISOString(),
      MOORING_PROVIDERS_FILE: at('good.yaml'), MOORING_SANDBOX: 'true', ...storage, ...goodEnv(),
    });
    await withSandbox.waitForOutput(/Mooring is running at/, START_TIMEOUT_MS);
    const sandboxClient = (await officialClient(sandboxUrl, 'client_secret_basic')).mh;
    expect((await sandboxClient.listConnections()).find((c) => c.name === 'Modelo Open Banking Mock')?.id).toBe(MODELO_ID);
    expect((await sandboxClient.listAPIConnections()).map((c) => c.name)).toEqual(expect.arrayContaining(['Acme Bank', 'Bravo Building Society', 'Nationwide Open Banking']));
    const moved = (await (await fetch(`${sandboxUrl}/sandbox/clock`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { offsetMs: number };
    expect(moved.offsetMs).not.toBe(0);
    await withSandbox.stop();

    // Sandbox mode off again over the same data: real providers run on real time, not on the stored sandbox offset, and start-up says it ignored it.
    const realPort = await freePort();
    const realUrl = `http://127.0.0.1:${realPort}`;
    const offAgain = spawnMooring('good-providers-off-again', ['start'], {
      PORT: String(realPort), HOST: '127.0.0.1', PUBLIC_URL: realUrl, MOORING_ADMIN_TOKEN: ADMIN_TOKEN, MOORING_SANDBOX_CLOCK_START: DOMAIN_START.toISOString(),
      MOORING_PROVIDERS_FILE: at('good.yaml'), ...storage, ...goodEnv(),
    });
    await offAgain.waitForOutput(/Mooring is running at/, START_TIMEOUT_MS);
    expect(offAgain.output()).toContain('sandbox mode is off: ignoring the stored sandbox clock offset');
    const before = Date.now();
    const user = await (await officialClient(realUrl, 'client_secret_basic')).mh.registerUser({ clientUserId: 'real-time' });
    const after = Date.now();
    const createdAt = Date.parse(String(user.createdAt));
    expect(createdAt).toBeGreaterThanOrEqual(before - 1_000);
    expect(createdAt).toBeLessThanOrEqual(after + 1_000);
    await offAgain.stop();
  }, 4 * START_TIMEOUT_MS);

  it('JSON: the same providers from a JSON file, and the hashed id is the same on every start', async () => {
    writeFileSync(at('good.json'), JSON.stringify({
      defaults: { consentDays: 30 },
      providers: [obEntry('Charlie Bank'), obEntry('Delta Bank', { signingKey: { env: 'DELTA_KEY' } }, { id: ACME_ID.toUpperCase(), tppConsent: true })],
    }));
    const env = { MOORING_PROVIDERS_FILE: at('good.json'), DELTA_KEY: signingKeyPem };
    const config = loadConfig(env);
    expect(loadConfig(env).providers.map((p) => p.id)).toEqual(config.providers.map((p) => p.id));
    const ts = await startTestServer({ providers: config.providers, providersFile: config.providersFile });
    try {
      const listed = await (await officialClient(ts.baseUrl, 'client_secret_basic')).mh.listConnections();
      const charlie = listed.find((c) => c.name === 'Charlie Bank');
      expect(charlie?.id).toMatch(/^[0-9a-f]{32}$/);
      expect(listed.find((c) => c.name === 'Delta Bank')?.id).toBe(ACME_ID);
      expect(listed.filter((c) => c.id === MODELO_ID)).toHaveLength(1);
      const checked = await mooringCommand(['providers', 'check', at('good.json')], { DELTA_KEY: signingKeyPem });
      expect(checked.code, checked.stderr).toBe(0);
      expect(checked.stdout).toContain(`Charlie Bank: id ${charlie?.id ?? '?'}, adapter openbanking, consentDays 30`);
      expect(checked.stdout).toContain('2 provider(s), no problems');
    } finally {
      await ts.stop();
    }
  }, START_TIMEOUT_MS);
});

describe('a bad providers file stops start-up, naming the entry and the field', () => {
  const cases: { what: string; entries: () => Record<string, unknown>[]; expected: RegExp }[] = [
    {
      what: 'a missing field',
      entries: () => [obEntry('Charlie Bank', { clientId: null })],
      expected: /provider "Charlie Bank" \(entry 1\): settings\.clientId: is required/,
    },
    {
      what: 'a duplicate name',
      entries: () => [obEntry('Charlie Bank'), obEntry('Charlie Bank')],
      expected: /provider "Charlie Bank" \(entry 2\): name: is also the name of entry 1/,
    },
    {
      what: 'more unattended syncs a day than UK Open Banking allows',
      entries: () => [obEntry('Charlie Bank', {}, { unattendedSyncsPerDay: 5, staleAfterHours: 0 })],
      expected: /provider "Charlie Bank" \(entry 1\): unattendedSyncsPerDay: must be a whole number from 1 to 4 \(UK Open Banking and PSD2 account information allow 4 unattended accesses a day\)[^]*staleAfterHours: must be a whole number of hours/,
    },
    {
      what: 'more unattended syncs a day than PSD2 allows, for Enable Banking and GoCardless entries too',
      entries: () => [
        { name: 'Echo Bank', type: 'api', adapter: 'enablebanking', unattendedSyncsPerDay: 5, settings: { applicationId: 'app', privateKey: { file: 'certs/signing.key' }, aspsp: { name: 'Echo', country: 'GB' } } },
        { name: 'Foxtrot Bank', type: 'api', adapter: 'gocardless', unattendedSyncsPerDay: 6, settings: { secretId: 'id', secretKey: { file: 'certs/signing.key' }, institutionId: 'SANDBOXFINANCE_SFIN0000' } },
      ],
      expected: /provider "Echo Bank" \(entry 1\): unattendedSyncsPerDay: must be a whole number from 1 to 4 \(UK Open Banking and PSD2 account information allow 4 unattended accesses a day\) \(got 5\)[^]*provider "Foxtrot Bank" \(entry 2\): unattendedSyncsPerDay: must be a whole number from 1 to 4 [^]*\(got 6\)/,
    },
    {
      what: 'a staleness window no longer than the gap between scheduled syncs',
      entries: () => [obEntry('Charlie Bank', {}, { unattendedSyncsPerDay: 2, staleAfterHours: 12 })],
      expected: /provider "Charlie Bank" \(entry 1\): staleAfterHours: staleAfterHours \(12\) must be longer than the 12 h that can pass between scheduled syncs/,
    },
    {
      what: 'a legacy staleness window no longer than the longest nightly gap (a sync at 20:00 UTC, the next at 02:00 the day after next)',
      entries: () => [obEntry('Charlie Bank', {}, { type: 'legacy', staleAfterHours: 30 })],
      expected: /provider "Charlie Bank" \(entry 1\): staleAfterHours: staleAfterHours \(30\) must be longer than the 30 h that can pass between scheduled syncs/,
    },
    {
      what: 'a valuation staleness window no longer than the longest monthly gap (the 1st of a 31-day month to the 2nd of the next, 03:00 UTC)',
      entries: () => [obEntry('Charlie Bank', {}, { type: 'zoopla', staleAfterHours: 32 * 24 })],
      expected: /provider "Charlie Bank" \(entry 1\): staleAfterHours: staleAfterHours \(768\) must be longer than the 771 h that can pass between scheduled syncs/,
    },
    {
      what: 'a secret written in the file',
      entries: () => [obEntry('Charlie Bank', { signingKey: signingKeyPem })],
      expected: /provider "Charlie Bank" \(entry 1\): settings\.signingKey: a secret is never written in the providers file: use \{ "env": "VARIABLE" \} or \{ "file": "path" \}/,
    },
    {
      what: 'a file reference that cannot be read',
      entries: () => [obEntry('Charlie Bank', { transportKey: { file: './certs/missing.key' } })],
      expected: /provider "Charlie Bank" \(entry 1\): settings\.transportKey: cannot read file \.\/certs\/missing\.key \(ENOENT\)/,
    },
    {
      what: 'a PEM that is not a key',
      entries: () => [obEntry('Charlie Bank', { signingKey: { file: 'certs/not-a-key.pem' } })],
      expected: /provider "Charlie Bank" \(entry 1\): settings\.signingKey: is not a readable PEM private key/,
    },
    {
      what: 'a transport key that does not match the certificate',
      entries: () => [obEntry('Charlie Bank', { transportKey: { file: 'certs/other.key' } })],
      expected: /provider "Charlie Bank" \(entry 1\): settings\.transportKey: does not match transportCert/,
    },
  ];

  it.each(cases)('$what', async ({ what, entries, expected }) => {
    const file = jsonFile(`bad-${what.replace(/\W+/g, '-')}.json`, entries());
    const { exit, output } = await failedStart(file);
    expect(exit.code, output).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(output).toContain(`providers file ${file}:`);
    expect(output).toMatch(expected);
    expect(output).not.toContain('Mooring is running');
  }, 60_000);

  it('an unreadable providers file', async () => {
    const { exit, output } = await failedStart(at('no-such-file.yaml'));
    expect(exit.code).not.toBe(0);
    expect(output).toContain(`providers file ${at('no-such-file.yaml')}: cannot read it (ENOENT)`);
  }, 60_000);
});

describe('mooring providers check', () => {
  it('lists every provider and exits 0 for a good file', async () => {
    writeFileSync(at('check-good.yaml'), GOOD_YAML);
    const res = await mooringCommand(['providers', 'check', at('check-good.yaml')], goodEnv());
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`Acme Bank: id ${ACME_ID}, adapter openbanking, consentDays 60`);
    expect(res.stdout).toMatch(/Bravo Building Society: id [0-9a-f]{32}, adapter openbanking, consentDays none/);
    expect(res.stdout).toContain('2 provider(s), no problems');
  }, 60_000);

  it('accepts staleness windows just longer than the longest gap between scheduled syncs', async () => {
    const file = jsonFile('check-stale-ok.json', [
      obEntry('Legacy Bank', {}, { type: 'legacy', staleAfterHours: 31 }),
      obEntry('Valuation Bank', {}, { type: 'zoopla', staleAfterHours: 772 }),
      obEntry('Twice A Day Bank', {}, { unattendedSyncsPerDay: 2, staleAfterHours: 13 }),
    ]);
    const res = await mooringCommand(['providers', 'check', file]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('3 provider(s), no problems');
  }, 60_000);

  it('reads MOORING_PROVIDERS_FILE when no file is named, and needs nothing else (no database)', async () => {
    writeFileSync(at('check-env.yaml'), GOOD_YAML);
    const res = await mooringCommand(['providers', 'check'], { ...goodEnv(), MOORING_PROVIDERS_FILE: at('check-env.yaml'), DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`providers file ${at('check-env.yaml')}`);
  }, 60_000);

  it('lists every problem and exits 1 for a bad file', async () => {
    const file = jsonFile('check-bad.json', [
      obEntry('Charlie Bank'),
      obEntry('Charlie Bank', { clientSecret: 'literal' }),
      obEntry('Modelo Open Banking Mock'),
      { name: 'Echo Bank', type: 'api', adapter: 'enablebanking', settings: { applicationId: 'app', privateKey: { env: 'ECHO_KEY' }, aspsp: { name: 'Echo', country: 'gb' } } },
      { type: 'api', adapter: 'openbanking', id: MODELO_ID, settings: {} },
    ]);
    const res = await mooringCommand(['providers', 'check', file], { ECHO_KEY: signingKeyPem, MOORING_SANDBOX: 'true' });
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('Charlie Bank: id');
    const problems = res.stderr;
    expect(problems).toMatch(/provider "Charlie Bank" \(entry 2\): settings\.clientSecret: unknown field for the openbanking adapter/);
    expect(problems).toMatch(/provider "Charlie Bank" \(entry 2\): name: is also the name of entry 1/);
    expect(problems).toMatch(/provider "Modelo Open Banking Mock" \(entry 3\): name: is the name of a sandbox provider/);
    expect(problems).toMatch(/provider "Echo Bank" \(entry 4\): settings\.aspsp\.country: must be a two-letter ISO 3166 country code/);
    expect(problems).toMatch(/entry 5: name: is required/);
    expect(problems).toMatch(/entry 5: settings\.wellKnownUrl: is required/);
    // Off sandbox mode, the sandbox's names are free; and it is off by default when the file lists providers.
    const offSandbox = await mooringCommand(['providers', 'check', file], { ECHO_KEY: signingKeyPem, MOORING_SANDBOX: 'false' });
    expect(offSandbox.stderr).toMatch(/name: is also the name of entry 1/);
    expect(offSandbox.stderr).not.toMatch(/sandbox provider/);
    const byDefault = await mooringCommand(['providers', 'check', file], { ECHO_KEY: signingKeyPem });
    expect(byDefault.stderr).toMatch(/name: is also the name of entry 1/);
    expect(byDefault.stderr).not.toMatch(/sandbox provider/);
  }, 60_000);

  it('says how to use it when the subcommand is wrong, and what is missing without a file', async () => {
    const wrong = await mooringCommand(['providers', 'frobnicate']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('Usage: mooring providers <check|probe|register>');
    expect(wrong.stderr).toContain('providers check [FILE]');
    const none = await mooringCommand(['providers', 'check']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no providers file');
  }, 60_000);
});
