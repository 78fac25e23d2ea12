/**
 * The GoCardless sandbox counterpart over raw HTTP, as GoCardless documents its API: the secret
 * pair and JWT-shaped tokens checked on every call, trailing-slash paths, institutions with their
 * limits as strings, end-user agreements validated against GoCardless's ranges and the
 * institution's maxima, a requisition's lifecycle through its own consent page, the per-account
 * daily limit with its headers and 429 body, and deletion. Then the adapter's side: two adapters
 * over one database issue one token pair between them.
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGoCardlessAdapter } from '../../src/providers/gocardless/adapter.ts';
import { resolveSecretBox } from '../../src/crypto/key.ts';
import { retryAfterMsOf } from '../../src/providers/http.ts';
import { tokenContext } from '../../src/providers/gocardless/tokens.ts';
import { GC_SANDBOX_PREFIX, SANDBOX_GC_SECRET_ID, SANDBOX_GC_SECRET_KEY } from '../../src/sandbox/banks/index.ts';
import { Browser } from '../helpers/browser.ts';
import { goCardlessEntry, pairsIssued } from '../helpers/gocardless.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let ts: TestServer;
let api = '';
let token = '';

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function gc(method: string, path: string, body?: unknown, bearer: string | null = token): Promise<Answer> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { accept: 'application/json', ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>, headers: res.headers };
}

beforeAll(async () => {
  ts = await startTestServer();
  api = `${ts.baseUrl}${GC_SANDBOX_PREFIX}`;
  const t = await gc('POST', '/token/new/', { secret_id: SANDBOX_GC_SECRET_ID, secret_key: SANDBOX_GC_SECRET_KEY }, null);
  token = String(t.body.access);
});
afterAll(async () => ts?.stop());

/** A requisition the user approved on the counterpart's consent page as `username`; answers its accounts. */
async function linkedRequisition(username = 'user_ok'): Promise<{ id: string; accounts: string[] }> {
  const agreement = await gc('POST', '/agreements/enduser/', { institution_id: 'SANDBOXFINANCE_SFIN0000', max_historical_days: 30, access_valid_for_days: 30 });
  const created = await gc('POST', '/requisitions/', { redirect: `${ts.baseUrl}/back`, institution_id: 'SANDBOXFINANCE_SFIN0000', agreement: agreement.body.id, reference: `ref-${Math.random()}` });
  expect(created.status).toBe(201);
  const browser = new Browser();
  const page = await browser.follow(String(created.body.link), (u) => u.startsWith(`${ts.baseUrl}/back`));
  const back = await browser.submit(page, { username, password: 'x' }, { button: 'approve', stopAt: (u) => u.startsWith(`${ts.baseUrl}/back`) });
  expect(new URL(back.location ?? '').searchParams.get('ref')).toBe(created.body.reference);
  const linked = await gc('GET', `/requisitions/${String(created.body.id)}/`);
  expect(linked.body.status).toBe('LN');
  return { id: String(created.body.id), accounts: linked.body.accounts as string[] };
}

describe('the GoCardless sandbox counterpart', () => {
  it('issues a JWT-shaped token pair for the right secret pair only, and checks the access token on every call', async () => {
    const wrong = await gc('POST', '/token/new/', { secret_id: SANDBOX_GC_SECRET_ID, secret_key: 'nope' }, null);
    expect(wrong.status).toBe(401);
    const pair = await gc('POST', '/token/new/', { secret_id: SANDBOX_GC_SECRET_ID, secret_key: SANDBOX_GC_SECRET_KEY }, null);
    expect(pair.body).toMatchObject({ access_expires: 86400, refresh_expires: 2592000 });
    const claims = decodeJwt(String(pair.body.access));
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(86400);
    for (const bad of [null, 'not-a-token', String(pair.body.refresh)]) {
      const r = await gc('GET', '/institutions/', undefined, bad);
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ summary: 'Invalid token', status_code: 401 });
    }
    const refreshed = await gc('POST', '/token/refresh/', { refresh: pair.body.refresh }, null);
    expect(refreshed.status).toBe(200);
    expect((await gc('GET', '/institutions/', undefined, String(refreshed.body.access))).status).toBe(200);
  });

  it('serves only trailing-slash paths, and institutions with their limits as strings', async () => {
    expect((await gc('GET', '/institutions/SANDBOXFINANCE_SFIN0000')).status).toBe(404);
    const i = await gc('GET', '/institutions/MOORING_STRICT_MSTR0000/');
    expect(i.body).toMatchObject({ id: 'MOORING_STRICT_MSTR0000', transaction_total_days: '730', max_access_valid_for_days: '90' });
  });

  it('validates end-user agreements against GoCardless\'s ranges and the institution\'s maxima', async () => {
    const bad = [
      { institution_id: 'SANDBOXFINANCE_SFIN0000', max_historical_days: 731 },
      { institution_id: 'SANDBOXFINANCE_SFIN0000', max_historical_days: 91 },
      { institution_id: 'MOORING_STRICT_MSTR0000', access_valid_for_days: 91 },
      { institution_id: 'SANDBOXFINANCE_SFIN0000', access_valid_for_days: 181 },
      { institution_id: 'SANDBOXFINANCE_SFIN0000', access_scope: ['everything'] },
      { institution_id: 'NO_SUCH_BANK' },
    ];
    for (const body of bad) {
      const r = await gc('POST', '/agreements/enduser/', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.status_code, JSON.stringify(body)).toBe(400);
      expect(typeof r.body.summary).toBe('string');
    }
    const ok = await gc('POST', '/agreements/enduser/', { institution_id: 'MOORING_STRICT_MSTR0000', access_valid_for_days: 90, max_historical_days: 730 });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ access_valid_for_days: 90, max_historical_days: 730, accepted: null, access_scope: ['balances', 'details', 'transactions'] });
  });

  it('limits each account to 4 successful calls a day per scope, with the rate-limit headers on every answer and the documented 429 body', async () => {
    const { accounts } = await linkedRequisition();
    const account = accounts[0] ?? '';
    const remaining: string[] = [];
    for (let i = 0; i < 4; i += 1) {
      const r = await gc('GET', `/accounts/${account}/balances/`);
      expect(r.status).toBe(200);
      remaining.push(r.headers.get('http_x_ratelimit_account_success_remaining') ?? '');
      expect(r.headers.get('http_x_ratelimit_account_success_limit')).toBe('4');
    }
    expect(remaining).toEqual(['3', '2', '1', '0']);
    const limited = await gc('GET', `/accounts/${account}/balances/`);
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ detail: 'Daily request limit set by the Institution has been exceeded.', type: 'RateLimitError', status_code: 429 });
    expect(Number(limited.headers.get('http_x_ratelimit_account_success_reset'))).toBeGreaterThan(86_000);
    // Each scope has its own limit.
    expect((await gc('GET', `/accounts/${account}/transactions/`)).status).toBe(200);
  });

  it('returns the user with ?ref and an error on cancel, and deletes a requisition with its agreement', async () => {
    const created = await gc('POST', '/requisitions/', { redirect: `${ts.baseUrl}/back?x=1`, institution_id: 'SANDBOXFINANCE_SFIN0000', reference: 'cancel-me' });
    expect(created.body).toMatchObject({ status: 'CR', accounts: [] });
    const browser = new Browser();
    const page = await browser.follow(String(created.body.link), () => false);
    expect((await gc('GET', `/requisitions/${String(created.body.id)}/`)).body.status).toBe('GC');
    const back = await browser.submit(page, {}, { button: 'cancel', stopAt: (u) => u.startsWith(`${ts.baseUrl}/back`) });
    const url = new URL(back.location ?? '');
    expect(Object.fromEntries(url.searchParams)).toEqual({ x: '1', ref: 'cancel-me', error: 'UserCancelledSession', details: 'User cancelled the session.' });
    const deleted = await gc('DELETE', `/requisitions/${String(created.body.id)}/`);
    expect(deleted.body).toMatchObject({ summary: 'Requisition deleted' });
    expect((await gc('GET', `/requisitions/${String(created.body.id)}/`)).status).toBe(404);
  });

  it('sends the user back only to Mooring\'s own origin: a requisition redirecting anywhere else is refused (400, nothing created)', async () => {
    const port = new URL(ts.baseUrl).port;
    for (const redirect of ['https://evil.example/phish', `http://localhost:${port}/back`, `https://127.0.0.1:${port}/back`, 'http://127.0.0.1:1/back', `${ts.baseUrl}.evil.example/back`, 'javascript:alert(1)', '/back']) {
      const refused = await gc('POST', '/requisitions/', { redirect, institution_id: 'SANDBOXFINANCE_SFIN0000', reference: `evil-${Math.random()}` });
      expect(refused.status, redirect).toBe(400);
      expect(refused.body, redirect).toEqual({ summary: 'Invalid redirect', detail: `redirect must be an address of ${ts.baseUrl}`, status_code: 400 });
    }
    const requisitions = await ts.server.db.query("select 1 from sandbox_gc_requisitions where reference like 'evil-%'");
    expect(requisitions.rows).toHaveLength(0);
    expect((await gc('POST', '/requisitions/', { redirect: `${ts.baseUrl}/connect/callback`, institution_id: 'SANDBOXFINANCE_SFIN0000', reference: 'own' })).status).toBe(201);
  });

  it('ends the agreement at accepted + access_valid_for_days on the sandbox clock: 401 EUA expired, requisition EX, account EXPIRED', async () => {
    const { id, accounts } = await linkedRequisition();
    const res = await fetch(`${ts.baseUrl}/sandbox/clock`, {
      method: 'POST', headers: { authorization: 'Bearer test-admin-token-0123456789abcdef', 'content-type': 'application/json' }, body: JSON.stringify({ advance: 'P30DT1M' }),
    });
    expect(res.status).toBe(200);
    const r = await gc('GET', `/accounts/${accounts[0] ?? ''}/balances/`);
    expect(r.status).toBe(401);
    expect(String(r.body.summary)).toMatch(/^End User Agreement \(EUA\) .* has expired$/);
    expect((await gc('GET', `/requisitions/${id}/`)).body.status).toBe('EX');
    expect((await gc('GET', `/accounts/${accounts[0] ?? ''}/`)).body.status).toBe('EXPIRED');
  });
});

describe('the token pair, shared through the database', () => {
  it('two adapters over one database, asked at once, issue one token pair between them', async () => {
    const provider = goCardlessEntry({ publicUrl: ts.baseUrl }, { name: 'Shared Pair Bank' });
    const { box } = resolveSecretBox(ts.config);
    const a = createGoCardlessAdapter({ timeoutMs: 5_000, db: ts.testDb.db, secrets: box });
    const b = createGoCardlessAdapter({ timeoutMs: 5_000, db: ts.testDb.db, secrets: box });
    const before = await pairsIssued(ts.testDb.db);
    const start = (adapter: typeof a, i: number) =>
      adapter.startAuthorisation({ provider, callbackUrl: `${ts.baseUrl}/connect/callback`, state: `s${i}`, consentExpiresAt: null });
    const steps = await Promise.all([start(a, 1), start(b, 2), start(a, 3), start(b, 4)]);
    expect(steps.every((s) => s.kind === 'redirect')).toBe(true);
    expect(await pairsIssued(ts.testDb.db)).toBe(before + 1);
    // The pair is sealed at rest: the access token is nowhere in the row.
    const row = await ts.testDb.db.query<{ sealed: string }>('select sealed from gocardless_tokens where provider_id = $1', [provider.id]);
    expect(row.rows[0]?.sealed).toMatch(/^v1\./);
    expect(row.rows[0]?.sealed).not.toContain('eyJ');
  });

  const tokensIssued = async (via: 'new' | 'refresh'): Promise<number> => {
    const r = await ts.testDb.db.query<{ n: string | number }>("select count(*) as n from sandbox_gc_tokens where kind = 'access' and via = $1", [via]);
    return Number(r.rows[0]?.n ?? 0);
  };

  it('refreshes an access token that nears its end with /token/refresh/, not a new pair', async () => {
    const provider = goCardlessEntry({ publicUrl: ts.baseUrl }, { name: 'Refreshing Bank' });
    const { box } = resolveSecretBox(ts.config);
    const pair = await gc('POST', '/token/new/', { secret_id: SANDBOX_GC_SECRET_ID, secret_key: SANDBOX_GC_SECRET_KEY }, null);
    const now = Date.now();
    const stored = { secretId: SANDBOX_GC_SECRET_ID, access: pair.body.access, accessExpiresAt: now + 60_000, refresh: pair.body.refresh, refreshExpiresAt: now + 2_592_000_000 };
    await ts.testDb.db.query('insert into gocardless_tokens (provider_id, sealed, updated_at) values ($1, $2, now())', [provider.id, box.seal(JSON.stringify(stored), tokenContext(provider.id))]);
    const [newBefore, refreshBefore] = [await tokensIssued('new'), await tokensIssued('refresh')];
    const adapter = createGoCardlessAdapter({ timeoutMs: 5_000, db: ts.testDb.db, secrets: box });
    const step = await adapter.startAuthorisation({ provider, callbackUrl: `${ts.baseUrl}/connect/callback`, state: 'r1', consentExpiresAt: null });
    expect(step.kind).toBe('redirect');
    expect(await tokensIssued('refresh')).toBe(refreshBefore + 1);
    expect(await tokensIssued('new')).toBe(newBefore);
  });

  it('re-issues the pair once when GoCardless answers 401 "Invalid token"', async () => {
    const provider = goCardlessEntry({ publicUrl: ts.baseUrl }, { name: 'Refusing Bank' });
    const { box } = resolveSecretBox(ts.config);
    const far = Date.now() + 86_400_000;
    const garbage = { secretId: SANDBOX_GC_SECRET_ID, access: 'not.a.token', accessExpiresAt: far, refresh: 'not.a.token', refreshExpiresAt: far };
    await ts.testDb.db.query('insert into gocardless_tokens (provider_id, sealed, updated_at) values ($1, $2, now())', [provider.id, box.seal(JSON.stringify(garbage), tokenContext(provider.id))]);
    const before = await pairsIssued(ts.testDb.db);
    const adapter = createGoCardlessAdapter({ timeoutMs: 5_000, db: ts.testDb.db, secrets: box });
    const step = await adapter.startAuthorisation({ provider, callbackUrl: `${ts.baseUrl}/connect/callback`, state: 'r2', consentExpiresAt: null });
    expect(step.kind).toBe('redirect');
    expect(await pairsIssued(ts.testDb.db)).toBe(before + 1);
  });
});

describe('GoCardless rate-limit headers at the edge', () => {
  it('reads the HTTP_X_RATELIMIT_* names as GoCardless documents them, and the x-ratelimit-* spelling; an exhausted account limit wins', () => {
    const h = (o: Record<string, string>) => new Headers(o);
    expect(retryAfterMsOf(h({ HTTP_X_RATELIMIT_RESET: '60' }), 0)).toBe(60_000);
    expect(retryAfterMsOf(h({ 'X-RateLimit-Reset': '30' }), 0)).toBe(30_000);
    expect(retryAfterMsOf(h({ HTTP_X_RATELIMIT_RESET: '60', HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING: '0', HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET: '7200' }), 0)).toBe(7_200_000);
    expect(retryAfterMsOf(h({ 'x-ratelimit-reset': '60', 'x-ratelimit-account-success-remaining': '2', 'x-ratelimit-account-success-reset': '7200' }), 0)).toBe(60_000);
  });
});
