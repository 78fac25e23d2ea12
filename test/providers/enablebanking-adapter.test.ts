/**
 * The Enable Banking adapter against a throwaway HTTP server playing Enable Banking: the application
 * JWT it sends (as documented, and reused), how it reads what the service answers (balance
 * preference, signed amounts, BOOK/PDNG kept and the other statuses not, stable ids without
 * entry_reference, continuation_key followed), and how each error body becomes a ProviderError kind
 * (the session's own status deciding a refused session, ASPSP errors, rate limits, garbage, time-outs).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPublicKey } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../src/providers/catalog.ts';
import { ProviderError, type FetchResult } from '../../src/providers/provider.ts';
import { createProviderAdapters } from '../../src/providers/registry.ts';
import { applicationKey, enableBankingEntry } from '../helpers/enablebanking.ts';

type Route = (req: http.IncomingMessage, url: URL) => { status: number; body?: unknown; raw?: string; hang?: boolean };

const KEY = applicationKey();
const APP = '5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d';
let route: Route = () => ({ status: 404, body: { message: 'not found' } });
const seen: { path: string; search: string; authorization: string | undefined; psuIp: string | undefined }[] = [];
const fake = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  seen.push({ path: url.pathname, search: url.search, authorization: req.headers.authorization, psuIp: req.headers['psu-ip-address'] as string | undefined });
  const answer = route(req, url);
  if (answer.hang === true) return;
  res.writeHead(answer.status, { 'content-type': 'application/json' });
  res.end(answer.raw ?? (answer.body === undefined ? '' : JSON.stringify(answer.body)));
});
let provider: CatalogEntry;
const adapters = createProviderAdapters({ sandboxClientSecret: 'x', timeoutMs: 10_000 });
const hasty = createProviderAdapters({ sandboxClientSecret: 'x', timeoutMs: 300 });
const NOW = new Date('2026-01-14T09:00:00Z');

beforeAll(async () => {
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  provider = enableBankingEntry({ publicUrl: `http://127.0.0.1:${(fake.address() as AddressInfo).port}` }, { name: 'Fake EB', applicationId: APP, privateKey: KEY });
  provider = { ...provider, enablebanking: { ...(provider.enablebanking as NonNullable<CatalogEntry['enablebanking']>), apiUrl: `http://127.0.0.1:${(fake.address() as AddressInfo).port}` } };
});
afterAll(async () => {
  await adapters.close();
  await hasty.close();
  fake.closeAllConnections();
  await new Promise((resolve) => fake.close(resolve));
});

const account = (n: number) => ({ uid: `uid-${n}`, identification_hash: `hash-${n}`, cash_account_type: n === 1 ? 'CACC' : 'SVGS', currency: 'EUR', details: `Account ${n}`, account_id: { iban: `FI000000000000${n}123` } });
const grant = { sessionId: 'sess-1', validUntil: '2026-04-14T09:00:00.000Z', accounts: [account(1), account(2)] };
const balances = { balances: [
  { name: 'Closing', balance_type: 'CLBD', balance_amount: { currency: 'EUR', amount: '1.00' }, reference_date: '2026-01-14' },
  { name: 'Interim booked', balance_type: 'ITBD', balance_amount: { currency: 'EUR', amount: '-12.34' }, reference_date: '2026-01-14' },
] };
const tx = (over: Record<string, unknown>) => ({ transaction_amount: { currency: 'EUR', amount: '5.00' }, credit_debit_indicator: 'DBIT', status: 'BOOK', booking_date: '2026-01-10', remittance_information: ['Coffee'], ...over });

const fetchData = (a = adapters, attended = false): Promise<FetchResult> =>
  a.enablebanking.fetch({ provider, grant, attended, ...(attended ? { customerIpAddress: '198.51.100.4' } : {}), since: new Date('2026-01-01T10:00:00Z'), now: NOW });

async function kindOf(p: Promise<unknown>): Promise<{ kind: string; detail: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ProviderError) return { kind: err.kind, detail: err.safeDetail };
    throw err;
  }
  throw new Error('expected a ProviderError');
}

describe('what the adapter sends and reads', () => {
  it('sends the documented application JWT and reuses it; reads balances, transactions over pages, and keeps BOOK and PDNG only', async () => {
    seen.length = 0;
    route = (_req, url) => {
      if (url.pathname.endsWith('/balances')) return { status: 200, body: balances };
      if (url.pathname === '/accounts/uid-1/transactions') {
        return url.searchParams.get('continuation_key') === null
          ? { status: 200, body: { transactions: [tx({ entry_reference: 'e1' }), tx({ entry_reference: 'e2', status: 'PDNG', booking_date: null, transaction_date: '2026-01-13', credit_debit_indicator: 'CRDT' })], continuation_key: 'page-2' } }
          : { status: 200, body: { transactions: [tx({ entry_reference: 'e3', status: 'CNCL' }), tx({ entry_reference: 'e4', status: 'RJCT' }), tx({})], continuation_key: null } };
      }
      return { status: 200, body: { transactions: [] } };
    };
    const first = await fetchData();
    expect(first.partial).toBe(false);
    expect(first.accounts.map((a) => [a.providerAccountId, a.accountName, a.type, a.balanceMinor, a.accountReference])).toEqual([
      ['hash-1', 'Account 1', 'cash:current', -1234, '1123'], ['hash-2', 'Account 2', 'savings', -1234, '2123'],
    ]);
    expect(first.asOf).toBeNull();
    const txs = first.transactions.map((t) => [t.providerTransactionId.startsWith('eb-') ? 'hashed' : t.providerTransactionId, t.amountMinor, t.status]);
    expect(txs).toEqual([['e1', -500, 'posted'], ['e2', 500, 'pending'], ['hashed', -500, 'posted']]);
    const calls = seen.filter((s) => s.path === '/accounts/uid-1/transactions');
    expect(calls.map((c) => c.search)).toEqual(['?date_from=2026-01-01', '?date_from=2026-01-01&continuation_key=page-2']);
    expect(seen.every((s) => s.psuIp === undefined)).toBe(true);

    const jwts = new Set(seen.map((s) => s.authorization));
    expect(jwts.size).toBe(1);
    const token = [...jwts][0]?.replace(/^Bearer /, '') ?? '';
    expect(decodeProtectedHeader(token)).toEqual({ typ: 'JWT', alg: 'RS256', kid: APP });
    const { payload } = await jwtVerify(token, createPublicKey(KEY), { issuer: 'enablebanking.com', audience: 'api.enablebanking.com' });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(3600);

    // The same content again gets the same id (no entry_reference: a hash of its stable fields); the JWT is reused.
    const again = await fetchData(adapters, true);
    expect(again.transactions.map((t) => t.providerTransactionId)).toEqual(first.transactions.map((t) => t.providerTransactionId));
    expect(new Set(seen.map((s) => s.authorization)).size).toBe(1);
    expect(seen.at(-1)?.psuIp).toBe('198.51.100.4');
  });

  it('a balance for an earlier day makes the data as of that day', async () => {
    route = (_req, url) => url.pathname.endsWith('/balances')
      ? { status: 200, body: { balances: [{ ...balances.balances[0], reference_date: '2026-01-12' }] } }
      : { status: 200, body: { transactions: [] } };
    const r = await fetchData();
    expect(r.asOf?.toISOString()).toBe('2026-01-12T00:00:00.000Z');
  });

  it('one account failing is partial data; every account failing is a failed fetch', async () => {
    route = (_req, url) => (url.pathname === '/accounts/uid-2/transactions' ? { status: 500, body: { message: 'x', code: 500, error: 'ASPSP_ERROR' } }
      : url.pathname.endsWith('/balances') ? { status: 200, body: balances } : { status: 200, body: { transactions: [] } });
    const partial = await fetchData();
    expect(partial.partial).toBe(true);
    expect(partial.partialDetail).toContain('the transactions of Account 2');
    route = () => ({ status: 500, body: { message: 'x', code: 500, error: 'ASPSP_ERROR' } });
    expect((await kindOf(fetchData())).kind).toBe('unavailable');
  });
});

describe('how failures become ProviderError kinds', () => {
  const session = (status: string) => ({ status, access: { valid_until: grant.validUntil }, accounts: [], accounts_data: [], aspsp: { name: 'X', country: 'FI' }, psu_type: 'personal', psu_id_hash: 'h', created: '2026-01-01T00:00:00Z' });
  const refusedWith = (code: string, status: string): Route => (_req, url) => (url.pathname === '/sessions/sess-1'
    ? { status: 200, body: session(status) }
    : { status: 401, body: { message: 'refused', code: 401, error: code } });

  const cases: [string, Route, string, RegExp?][] = [
    ['EXPIRED_SESSION with the session EXPIRED', refusedWith('EXPIRED_SESSION', 'EXPIRED'), 'consent_expired', /consent expired/],
    ['REVOKED_SESSION with the session REVOKED', refusedWith('REVOKED_SESSION', 'REVOKED'), 'credentials', /withdrew/],
    ['CLOSED_SESSION with the session CLOSED', refusedWith('CLOSED_SESSION', 'CLOSED'), 'credentials', /closed/],
    ['a refusal with the session CANCELLED', refusedWith('WRONG_SESSION_STATUS', 'CANCELLED'), 'credentials', /cancelled/],
    ['a refusal with the session INVALID', refusedWith('EXPIRED_SESSION', 'INVALID'), 'credentials', /failed/],
    ['ASPSP_RATE_LIMIT_EXCEEDED', () => ({ status: 429, body: { message: 'slow down', code: 429, error: 'ASPSP_RATE_LIMIT_EXCEEDED' } }), 'rate_limited'],
    ['ASPSP_TIMEOUT', () => ({ status: 408, body: { message: 't', code: 408, error: 'ASPSP_TIMEOUT' } }), 'timeout'],
    ['ASPSP_PSU_ACTION_REQUIRED', () => ({ status: 422, body: { message: 'sca', code: 422, error: 'ASPSP_PSU_ACTION_REQUIRED' } }), 'mfa_required'],
    ['UNAUTHORIZED_ACCESS (the application JWT refused)', () => ({ status: 401, body: { message: 'bad jwt', code: 401, error: 'UNAUTHORIZED_ACCESS' } }), 'unavailable', /operator/],
    ['a 502 without a body', () => ({ status: 502 }), 'unavailable'],
    ['garbage', () => ({ status: 200, raw: '<html>' }), 'bad_response'],
    ['an amount that is not a decimal', (_req, url) => (url.pathname.endsWith('/balances') ? { status: 200, body: { balances: [{ ...balances.balances[0], balance_amount: { currency: 'EUR', amount: 'lots' } }] } } : { status: 200, body: { transactions: [] } }), 'bad_response'],
  ];
  for (const [what, r, kind, detail] of cases) {
    it(`${what} → ${kind}`, async () => {
      route = r;
      const e = await kindOf(fetchData());
      expect(e.kind).toBe(kind);
      if (detail !== undefined) expect(e.detail).toMatch(detail);
    });
  }

  it('a 429 carries no wait (Enable Banking documents no reset): the runner waits for the next scheduled sync', async () => {
    route = () => ({ status: 429, body: { message: 'slow down', code: 429, error: 'ASPSP_RATE_LIMIT_EXCEEDED' } });
    try {
      await fetchData();
      throw new Error('expected a failure');
    } catch (err) {
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).retryAfterMs).toBeUndefined();
    }
  });

  it('no answer in time → timeout', async () => {
    route = () => ({ status: 200, hang: true });
    expect((await kindOf(fetchData(hasty))).kind).toBe('timeout');
  });
});
