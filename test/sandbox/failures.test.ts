/**
 * How the adapters translate what a misbehaving provider does into ProviderError kinds. A throwaway
 * HTTP server plays the provider (for Open Banking: its resource API, behind the sandbox bank's own
 * authorization server); the sandbox banks play user_slow.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../src/providers/catalog.ts';
import { decimalToMinor } from '../../src/providers/http.ts';
import { createProviderAdapters } from '../../src/providers/registry.ts';
import { setSandboxBehaviour } from '../../src/sandbox/banks/index.ts';
import { connectOb, errorKind, fetchData, SLOW_CALL_MS, startSandbox, type Harness } from './harness.ts';

type Responder = (req: http.IncomingMessage, res: http.ServerResponse) => void;

let respond: Responder = (_req, res) => res.end();
const fake = http.createServer((req, res) => respond(req, res));
let fakeUrl = '';
let h: Harness;
/** A provider that answers gets this long (generous: a loaded machine must not turn an answer into a time-out). */
const adapters = createProviderAdapters({ sandboxClientSecret: 'x', timeoutMs: 10_000 });
/** Adapters with a short time limit, for the providers below that never answer in time. */
const TIMEOUT_MS = 300;
const hasty = createProviderAdapters({ sandboxClientSecret: 'x', timeoutMs: TIMEOUT_MS });

beforeAll(async () => {
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
  h = await startSandbox();
});
afterAll(async () => {
  await adapters.close();
  await hasty.close();
  fake.closeAllConnections();
  await new Promise((resolve) => fake.close(resolve));
  await h.close();
});

const json = (status: number, body: unknown): Responder => (_req, res) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const fakeProvider = (name: string): CatalogEntry => ({ ...h.provider(name), baseUrl: fakeUrl });
/** Where the fake Open Banking provider serves its Read/Write API. */
const AISP = '/open-banking/v3.1/aisp';
/**
 * An Open Banking provider entry (its own id: the adapter keeps one client per provider) whose
 * authorization server is the sandbox Modelo bank's (discovery and tokens work) but whose resource
 * API is at `resourceBase`.
 */
const obProvider = (id: string, resourceBase: string): CatalogEntry => {
  const modelo = h.provider('Modelo Open Banking Mock');
  if (modelo.openbanking === undefined) throw new Error('Modelo has no Open Banking settings');
  return { ...modelo, id, name: `Fake ${id}`, origin: 'file', openbanking: { ...modelo.openbanking, resourceBaseUrl: resourceBase } };
};
const obGrant = { consentId: 'c1', accessToken: 'a', accessTokenExpiresAt: new Date(Date.now() + 3_600_000).toISOString(), refreshToken: 'r' };
const fetchOb = (a = adapters) => a.openbanking.fetch({ provider: obProvider('fake-ob', `${fakeUrl}${AISP}`), grant: obGrant, attended: false, since: null, now: h.clock.now() });

const account = { AccountId: 'A1', Currency: 'GBP', AccountSubType: 'CurrentAccount', Nickname: 'Main' };
/** A bank whose accounts list works; `rest` answers everything else. */
const bankWith = (rest: Responder): Responder => (req, res) =>
  req.url === `${AISP}/accounts` ? json(200, { Data: { Account: [account] }, Meta: { LastAvailableDateTime: new Date().toISOString() } })(req, res) : rest(req, res);

describe('provider failures become ProviderError kinds', () => {
  it('garbage instead of JSON is bad_response', async () => {
    respond = (_req, res) => res.end('<html>we are having a moment</html>');
    expect(await errorKind(fetchOb())).toBe('bad_response');
  });

  it('JSON of the wrong shape is bad_response', async () => {
    respond = json(200, { Data: { Account: [{ Currency: 'GBP' }] } });
    expect(await errorKind(fetchOb())).toBe('bad_response');
    respond = json(200, { Data: { Account: [account, account] } });
    expect(await errorKind(fetchOb())).toBe('bad_response');
  });

  it('a provider that does not answer in time is timeout', async () => {
    let answered = false;
    respond = (_req, res) => setTimeout(() => {
      answered = true;
      json(200, { Data: {} })(_req, res);
    }, TIMEOUT_MS * 3);
    expect(await errorKind(fetchOb(hasty))).toBe('timeout');
    // The adapter gave up before the provider answered, rather than waiting for the answer.
    expect(answered).toBe(false);
  });

  it('5xx is unavailable, 429 is rate_limited, 401/403 are credentials, SCA-required is mfa_required', async () => {
    respond = json(503, { Code: '503' });
    expect(await errorKind(fetchOb())).toBe('unavailable');
    respond = json(500, {});
    expect(await errorKind(fetchOb())).toBe('unavailable');
    respond = json(429, {});
    expect(await errorKind(fetchOb())).toBe('rate_limited');
    respond = json(403, { Errors: [{ ErrorCode: 'UK.OBIE.Resource.InvalidConsentStatus' }] });
    expect(await errorKind(fetchOb())).toBe('credentials');
    respond = json(403, { Errors: [{ ErrorCode: 'UK.OBIE.Reauthenticate' }] });
    expect(await errorKind(fetchOb())).toBe('mfa_required');
    // A 401 (no body, as FAPI banks answer) makes the adapter refresh at the bank's token endpoint,
    // which refuses this grant's refresh token (invalid_grant): the user must authorise again.
    let refused401 = 0;
    respond = (_req, res) => {
      refused401 += 1;
      res.writeHead(401).end();
    };
    expect(await errorKind(fetchOb())).toBe('credentials');
    expect(refused401).toBeGreaterThan(0);
  });

  it('a provider that cannot be reached is unavailable', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const provider = obProvider('fake-ob-closed', `http://127.0.0.1:${port}${AISP}`);
    expect(await errorKind(adapters.openbanking.fetch({ provider, grant: obGrant, attended: false, since: null, now: h.clock.now() }))).toBe('unavailable');
  });

  it('an account whose transactions fail makes the sync partial, not failed; no readable account at all (a bad amount, a foreign next link) fails it', async () => {
    respond = bankWith((req, res) =>
      req.url?.includes('/balances')
        ? json(200, { Data: { Balance: [{ AccountId: 'A1', Amount: { Amount: '10.50', Currency: 'GBP' }, CreditDebitIndicator: 'Debit', Type: 'InterimBooked', DateTime: new Date().toISOString() }] } })(req, res)
        : json(502, {})(req, res),
    );
    const r = await fetchOb();
    expect(r.partial).toBe(true);
    expect(r.accounts).toEqual([expect.objectContaining({ providerAccountId: 'A1', balanceMinor: -1050, type: 'cash:current' })]);
    respond = bankWith((req, res) =>
      req.url?.includes('/balances')
        ? json(200, { Data: { Balance: [{ AccountId: 'A1', Amount: { Amount: '10,50', Currency: 'GBP' }, CreditDebitIndicator: 'Credit', Type: 'InterimBooked', DateTime: new Date().toISOString() }] } })(req, res)
        : json(200, { Data: { Transaction: [] }, Links: { Next: 'http://evil.example/steal' } })(req, res),
    );
    // With no account readable at all, nothing usable came back: a failed sync, not a partial one.
    expect(await errorKind(fetchOb())).toBe('bad_response');
  });

  it('legacy and valuation providers translate the same way', async () => {
    respond = (_req, res) => res.end('not json');
    const aviva = fakeProvider('Aviva');
    const legacyGrant = { credentialId: 'c', credentialToken: 't' };
    expect(await errorKind(adapters.legacy.fetch({ provider: aviva, grant: legacyGrant, attended: false, since: null, now: h.clock.now() }))).toBe('bad_response');
    respond = json(401, { error: 'otp_required' });
    expect(await errorKind(adapters.legacy.fetch({ provider: aviva, grant: legacyGrant, attended: false, since: null, now: h.clock.now() }))).toBe('mfa_required');
    respond = json(200, { value: '-5.00', currency: 'GBP', valuationDate: new Date().toISOString() });
    const zoopla = fakeProvider('Zoopla');
    expect(await errorKind(adapters.valuation.fetch({ provider: zoopla, grant: { assetId: 'a', description: 'd' }, attended: false, since: null, now: h.clock.now() }))).toBe('bad_response');
    respond = (_req, res) => setTimeout(() => res.end('{}'), TIMEOUT_MS * 3);
    expect(await errorKind(hasty.valuation.fetch({ provider: zoopla, grant: { assetId: 'a', description: 'd' }, attended: false, since: null, now: h.clock.now() }))).toBe('timeout');
  });
});

describe('provider amounts', () => {
  it('become exact integer minor units, or an unreadable answer', () => {
    expect(decimalToMinor('12.3', 'GBP')).toBe(1230);
    expect(decimalToMinor('1000000.01', 'GBP')).toBe(100_000_001);
    expect(decimalToMinor('-0.00', 'GBP')).toBe(0);
    expect(decimalToMinor('0.005', 'GBP')).toBe(1);
    expect(decimalToMinor('1500', 'JPY')).toBe(1500);
    expect(() => decimalToMinor('12,30', 'GBP')).toThrow();
    expect(() => decimalToMinor('1e5', 'GBP')).toThrow();
  });
});

describe('user_slow', () => {
  it('makes every bank call slow: a sync still succeeds, and a time limit shorter than one call turns it into timeout', async () => {
    const modelo = h.provider('Modelo Open Banking Mock');
    const { done } = await connectOb(h, modelo, 'user_ok');
    await setSandboxBehaviour(h.db, done.ref, 'user_slow');
    const slow = await fetchData(h, 'openbanking', modelo, done.grant);
    expect(slow.transactions).toHaveLength(30);
    const impatient = createProviderAdapters({ sandboxClientSecret: 'sandbox-test-secret', timeoutMs: SLOW_CALL_MS / 4 });
    expect(await errorKind(impatient.openbanking.fetch({ provider: modelo, grant: slow.grant, attended: false, since: null, now: h.clock.now() }))).toBe('timeout');
    await impatient.close();
  });
});
