/**
 * The Enable Banking sandbox counterpart over raw HTTP, as Enable Banking's API reference describes
 * the service: the application JWT checked in full (a bad kid, audience, issuer, algorithm,
 * signature, an expired token or one living longer than 86 400 s are refused with an
 * ErrorResponse), valid_until beyond the bank's maximum refused, the authorisation page and its
 * redirect, sessions and their statuses (expiring exactly at valid_until on the sandbox clock,
 * closed by DELETE), and transactions paged by continuation_key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../helpers/browser.ts';
import { applicationJwt, applicationKey, ebCall, enableBankingEntry } from '../helpers/enablebanking.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { advanceClock, clockNow } from '../helpers/webhooks.ts';

const APP = 'b7e1c3d5-0a2f-4c6e-8d9b-1f3a5c7e9b2d';
const OTHER_APP = 'c2d4e6f8-1a3b-4c5d-9e7f-0a2b4c6d8e1f';
const KEY = applicationKey();
const OTHER_KEY = applicationKey();
const GB = { name: 'Mooring Sandbox Bank', country: 'GB' };
const MAX_GB_SECONDS = 90 * 86_400;

let ts: TestServer;
let callback: string;

beforeAll(async () => {
  ts = await startTestServer({}, {
    providers: (urls) => [
      enableBankingEntry(urls, { name: 'EB raw', applicationId: APP, privateKey: KEY }),
      enableBankingEntry(urls, { name: 'EB other application', applicationId: OTHER_APP, privateKey: OTHER_KEY }),
    ],
  });
  callback = `${ts.baseUrl}/connect/callback`;
});
afterAll(async () => ts?.stop());

const jwt = (o: Parameters<typeof applicationJwt>[2] = {}): Promise<string> => applicationJwt(APP, KEY, o);
const nowS = (): number => Math.floor(Date.now() / 1000);

/** POST /auth as the adapter sends it, `validForMs` from the sandbox clock's now. */
async function startAuth(validForMs: number, change: Record<string, unknown> = {}): Promise<Awaited<ReturnType<typeof ebCall>>> {
  const validUntil = new Date((await clockNow(ts.baseUrl)) + validForMs).toISOString();
  return ebCall(ts, await jwt(), 'POST', '/auth', {
    access: { valid_until: validUntil }, aspsp: GB, state: 'raw-state', redirect_url: callback, psu_type: 'personal', ...change,
  });
}

/** A whole authorisation: POST /auth, the bank's page approved as `username`, POST /sessions with the code. */
async function session(username = 'user_ok', validForMs = 3_600_000, aspsp = GB): Promise<{ sessionId: string; accounts: { uid: string; identification_hash: string; cash_account_type: string }[]; validUntil: string }> {
  const auth = await startAuth(validForMs, { aspsp });
  expect(auth.status).toBe(200);
  const browser = new Browser();
  const page = await browser.follow(String(auth.body.url));
  expect(page.status).toBe(200);
  expect(page.html).not.toContain('<script');
  const back = await browser.submit(page, { username, password: 'any' }, { button: 'approve', stopAt: (u) => u.startsWith(callback) });
  const to = new URL(back.location ?? '');
  expect(`${to.origin}${to.pathname}`).toBe(callback);
  expect(to.searchParams.get('state')).toBe('raw-state');
  const code = to.searchParams.get('code') ?? '';
  const s = await ebCall(ts, await jwt(), 'POST', '/sessions', { code });
  expect(s.status).toBe(200);
  // A code is single-use.
  expect((await ebCall(ts, await jwt(), 'POST', '/sessions', { code })).body).toMatchObject({ code: 422, error: 'WRONG_AUTHORIZATION_CODE' });
  return {
    sessionId: String(s.body.session_id),
    accounts: s.body.accounts as { uid: string; identification_hash: string; cash_account_type: string }[],
    validUntil: String((s.body.access as { valid_until: string }).valid_until),
  };
}

describe('the application JWT', () => {
  it('a JWT as documented (typ JWT, RS256, kid = application id, iss, aud, a lifetime up to 86 400 s) is accepted', async () => {
    const res = await ebCall(ts, await jwt(), 'GET', '/application');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ kid: APP, active: true, environment: 'SANDBOX', redirect_urls: [callback], services: ['AIS'] });
    const iat = nowS();
    expect((await ebCall(ts, await jwt({ iat, exp: iat + 86_400 }), 'GET', '/application')).status).toBe(200);
  });

  const refusals: [string, () => Promise<string | null>][] = [
    ['no Authorization header', async () => null],
    ['a kid no application has', () => jwt({ kid: 'f0f0f0f0-0000-4000-8000-000000000000' })],
    ['the audience api.tilisy.com', () => jwt({ aud: 'api.tilisy.com' })],
    ['another issuer', () => jwt({ iss: 'example.com' })],
    ['an expired token', () => jwt({ iat: nowS() - 7_200, exp: nowS() - 60 })],
    ['a lifetime of 86 401 s', () => jwt({ iat: nowS(), exp: nowS() + 86_401 })],
    ['a signature by another key', () => jwt({ key: OTHER_KEY })],
    ['PS256 instead of RS256', () => jwt({ alg: 'PS256' })],
    ['typ other than JWT', () => jwt({ typ: 'at+jwt' })],
    ['not a JWT at all', async () => 'not-a-jwt'],
  ];
  for (const [what, make] of refusals) {
    it(`refuses ${what} with a 401 ErrorResponse`, async () => {
      const res = await ebCall(ts, await make(), 'GET', '/aspsps');
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ code: 401, error: expect.stringMatching(/^(UNAUTHORIZED_ACCESS|AUTHORIZATION_NOT_PROVIDED)$/) as unknown });
      expect(typeof res.body.message).toBe('string');
    });
  }
});

describe('banks and authorisations', () => {
  it('lists its banks with their maximum consent validity, filtered by country and service', async () => {
    const res = await ebCall(ts, await jwt(), 'GET', '/aspsps?country=GB&psu_type=personal&service=AIS');
    expect(res.status).toBe(200);
    const aspsps = res.body.aspsps as { name: string; country: string; maximum_consent_validity: number }[];
    expect(aspsps).toEqual([expect.objectContaining({ ...GB, maximum_consent_validity: MAX_GB_SECONDS })]);
  });

  it('refuses valid_until beyond now + maximum_consent_validity, an unknown bank and a redirect URL not whitelisted', async () => {
    expect((await startAuth(MAX_GB_SECONDS * 1000 + 60_000)).body).toMatchObject({ code: 422, error: 'WRONG_REQUEST_PARAMETERS' });
    expect((await startAuth(MAX_GB_SECONDS * 1000 - 60_000)).status).toBe(200);
    expect((await startAuth(3_600_000, { aspsp: { name: 'No Such Bank', country: 'GB' } })).body).toMatchObject({ code: 422, error: 'WRONG_ASPSP_PROVIDED' });
    expect((await startAuth(3_600_000, { redirect_url: 'https://attacker.example/cb' })).body).toMatchObject({ code: 422, error: 'REDIRECT_URI_NOT_ALLOWED' });
    const missing = await ebCall(ts, await jwt(), 'POST', '/auth', { aspsp: GB });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ code: 400, error: 'WRONG_REQUEST_PARAMETERS' });
  });

  it('a customer who cancels at the bank goes back to the redirect URL with an error and the state', async () => {
    const auth = await startAuth(3_600_000);
    const browser = new Browser();
    const page = await browser.follow(String(auth.body.url));
    const back = await browser.submit(page, {}, { button: 'cancel', stopAt: (u) => u.startsWith(callback) });
    const to = new URL(back.location ?? '');
    expect(to.searchParams.get('error')).toBe('access_denied');
    expect(to.searchParams.get('state')).toBe('raw-state');
    expect(to.searchParams.get('code')).toBeNull();
  });
});

describe('sessions and account data', () => {
  it('pages transactions by continuation_key, 10 at a time, unsigned amounts signed by credit_debit_indicator', async () => {
    const s = await session('user_ok', 3_600_000);
    expect(s.accounts).toHaveLength(2);
    expect(s.accounts.map((a) => a.cash_account_type)).toEqual(['CACC', 'SVGS']);
    let total = 0;
    for (const a of s.accounts) {
      const refs = new Set<string>();
      let key: string | null = null;
      let pages = 0;
      do {
        const q: string = key === null ? '' : `?continuation_key=${encodeURIComponent(key)}`;
        const res = await ebCall(ts, await jwt(), 'GET', `/accounts/${a.uid}/transactions${q}`);
        expect(res.status).toBe(200);
        const txs = res.body.transactions as { entry_reference: string; transaction_amount: { amount: string }; credit_debit_indicator: string; status: string; booking_date?: string }[];
        expect(txs.length).toBeLessThanOrEqual(10);
        for (const t of txs) {
          expect(t.transaction_amount.amount).toMatch(/^\d+\.\d{2}$/);
          expect(['CRDT', 'DBIT']).toContain(t.credit_debit_indicator);
          expect(['BOOK', 'PDNG']).toContain(t.status);
          if (t.status === 'BOOK') expect(t.booking_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
          refs.add(t.entry_reference);
        }
        total += txs.length;
        key = (res.body.continuation_key as string | null | undefined) ?? null;
        pages += 1;
      } while (key !== null);
      if (refs.size > 10) expect(pages).toBeGreaterThan(1);
    }
    // 30 transactions of history over the two accounts, each once.
    expect(total).toBe(30);
    const balances = await ebCall(ts, await jwt(), 'GET', `/accounts/${s.accounts[0]?.uid ?? ''}/balances`);
    expect((balances.body.balances as { balance_type: string }[]).map((b) => b.balance_type)).toEqual(['ITAV', 'ITBD']);
    const uid = s.accounts[0]?.uid ?? '';
    expect((await ebCall(ts, await jwt(), 'GET', `/accounts/${uid}/transactions?continuation_key=garbage`)).body).toMatchObject({ code: 422, error: 'WRONG_CONTINUATION_KEY' });
    expect((await ebCall(ts, await jwt(), 'GET', `/accounts/${uid}/transactions?date_to=2026-01-01`)).body).toMatchObject({ code: 422, error: 'DATE_TO_WITHOUT_DATE_FROM' });
  });

  it('a session is AUTHORIZED until exactly its valid_until on the sandbox clock, then EXPIRED, and its accounts answer EXPIRED_SESSION', async () => {
    const s = await session('user_ok', 3_600_000);
    const uid = s.accounts[0]?.uid ?? '';
    await advanceClock(ts.baseUrl, 'PT59M');
    expect((await ebCall(ts, await jwt(), 'GET', `/sessions/${s.sessionId}`)).body).toMatchObject({ status: 'AUTHORIZED', access: { valid_until: s.validUntil } });
    expect((await ebCall(ts, await jwt(), 'GET', `/accounts/${uid}/balances`)).status).toBe(200);
    await advanceClock(ts.baseUrl, 'PT1M');
    expect((await ebCall(ts, await jwt(), 'GET', `/sessions/${s.sessionId}`)).body).toMatchObject({ status: 'EXPIRED' });
    expect((await ebCall(ts, await jwt(), 'GET', `/accounts/${uid}/balances`)).body).toMatchObject({ code: 401, error: 'EXPIRED_SESSION' });
  });

  it('only the application that made a session sees it; DELETE closes it and its accounts answer CLOSED_SESSION', async () => {
    const s = await session();
    const other = await applicationJwt(OTHER_APP, OTHER_KEY);
    expect((await ebCall(ts, other, 'GET', `/sessions/${s.sessionId}`)).body).toMatchObject({ code: 404, error: 'SESSION_DOES_NOT_EXIST' });
    expect((await ebCall(ts, other, 'GET', `/accounts/${s.accounts[0]?.uid ?? ''}/balances`)).status).toBe(404);
    expect((await ebCall(ts, await jwt(), 'DELETE', `/sessions/${s.sessionId}`)).body).toEqual({ message: 'OK' });
    expect((await ebCall(ts, await jwt(), 'GET', `/sessions/${s.sessionId}`)).body).toMatchObject({ status: 'CLOSED' });
    expect((await ebCall(ts, await jwt(), 'GET', `/accounts/${s.accounts[0]?.uid ?? ''}/transactions`)).body).toMatchObject({ code: 401, error: 'CLOSED_SESSION' });
  });

  it('PSU headers: all of the bank\'s required ones or none; some of them is PSU_HEADER_NOT_PROVIDED', async () => {
    const s = await session('user_ok', 3_600_000, { name: 'Mock ASPSP', country: 'FI' });
    const listed = await ebCall(ts, await jwt(), 'GET', '/aspsps?country=FI');
    expect((listed.body.aspsps as { required_psu_headers: string[] }[])[0]?.required_psu_headers).toEqual(['Psu-Ip-Address', 'Psu-User-Agent']);
    const uid = s.accounts[0]?.uid ?? '';
    expect((await ebCall(ts, await jwt(), 'GET', `/accounts/${uid}/balances`)).status).toBe(200);
    expect((await ebCall(ts, await jwt(), 'GET', `/accounts/${uid}/balances`, undefined, { 'psu-ip-address': '203.0.113.5', 'psu-user-agent': 'Mozilla/5.0' })).status).toBe(200);
    expect((await ebCall(ts, await jwt(), 'GET', `/accounts/${uid}/balances`, undefined, { 'psu-ip-address': '203.0.113.5' })).body)
      .toMatchObject({ code: 422, error: 'PSU_HEADER_NOT_PROVIDED' });
  });

  it('the same customer gets the same accounts (identification_hash) in a new session, with new uids', async () => {
    const a = await session('user_ok');
    const b = await session('user_ok');
    expect(b.accounts.map((x) => x.identification_hash)).toEqual(a.accounts.map((x) => x.identification_hash));
    expect(b.accounts.map((x) => x.uid)).not.toEqual(a.accounts.map((x) => x.uid));
  });
});
