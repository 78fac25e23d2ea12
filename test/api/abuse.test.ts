/**
 * Bad input and abuse (issue 7, section 4): hostile or malformed requests are refused with a 4xx in
 * our error shape and change nothing; one client's codes, request objects and credentials cannot be
 * reused in ways they were not issued for; payments are refused (SPEC section 4).
 */
import http from 'node:http';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { createServer } from '../../src/server.ts';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.ts';
import { atRedirect, officialClient, rejection, REDIRECT_URI, runJourney } from '../helpers/moneyhub.ts';
import { Browser, parseForms } from '../helpers/browser.ts';
import { fapiBankClient, type FapiBankClient } from '../helpers/fapi-client.ts';
import { testPki } from '../helpers/pki.ts';
import { accessToken, ALL_API_SCOPES, apiClient, call, connectBank, DAY_MS, MODELO_ID, requestToken, type ApiClient, type Res } from '../helpers/api.ts';

interface ErrorBody {
  code: string;
  message: string;
  details?: unknown;
}
const codeOf = (res: Res): string | undefined => (res.body as ErrorBody | undefined)?.code;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const deepJson = (levels: number): string => `{"token":${'['.repeat(levels)}${']'.repeat(levels)}}`;

/** An impossible date-time (the 31st of a shorter month) whose rolled-over reading is 5 to 80 days after `now`. */
function impossibleDateSoon(now: Date): string {
  for (let days = 5; days < 80; days++) {
    const d = new Date(now.getTime() + days * DAY_MS);
    const lastDay = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
    if (lastDay < 31) return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-31T12:00:00Z`;
  }
  throw new Error('no month shorter than 31 days in the next 80 days');
}

describe('bad input and abuse', () => {
  let ts: TestServer;
  let client: ApiClient;
  let token: string;
  let userId: string;
  let connectionId: string;
  let modeloSlug: string;

  const domainNow = async (): Promise<Date> => {
    const res = await call(ts.baseUrl, 'GET', '/sandbox/clock', { headers: admin });
    return new Date((res.body as { now: string }).now);
  };

  beforeAll(async () => {
    ts = await startTestServer();
    client = await apiClient(ts.baseUrl);
    token = await accessToken(ts.baseUrl, client, ALL_API_SCOPES);
    userId = (await client.mh.registerUser({ clientUserId: 'abuse' })).userId;
    connectionId = await connectBank(client, userId);
    const catalog = await call(ts.baseUrl, 'GET', '/oidc/.well-known/all-connections');
    modeloSlug = (catalog.body as { id: string; bankRef: string }[]).find((c) => c.id === MODELO_ID)?.bankRef ?? '';
    expect(modeloSlug).not.toBe('');
  });
  afterAll(async () => ts.stop());

  /** Raw calls to the sandbox Modelo bank as Mooring's client (mutual TLS, private_key_jwt). */
  const sandboxBank = (): Promise<FapiBankClient> =>
    fapiBankClient(testPki(), { publicUrl: ts.baseUrl, mtlsUrl: ts.server.sandboxMtlsUrl ?? '' }, modeloSlug);

  it('answers 400 (not 500) to JSON nested thousands of levels deep, with or without a token', async () => {
    const raw = deepJson(5000);
    expect(raw.length).toBeLessThan(100_000);
    const login = await call(ts.baseUrl, 'POST', '/admin/login', { raw });
    expect(login.status).toBe(400);
    expect(codeOf(login)).toBe('invalid_json');
    const users = await call(ts.baseUrl, 'POST', '/users', { token, raw: `{"clientUserId":"x","n":${'['.repeat(5000)}${']'.repeat(5000)}}` });
    expect(users.status).toBe(400);
    // The sandbox bank's consent endpoint (its mutual-TLS listener, with Mooring's client certificate), with or without its token.
    const bank = await sandboxBank();
    try {
      const consents = `${bank.aisp}/account-access-consents`;
      const deep = `{"Data":${'{"a":'.repeat(4000)}1${'}'.repeat(4000)},"Risk":{}}`;
      const bankToken = await bank.clientToken();
      const withAndWithout: Record<string, string>[] = [{ authorization: `Bearer ${bankToken}` }, {}];
      for (const headers of withAndWithout) {
        const refused = await bank.call('POST', consents, { headers: { ...headers, 'content-type': 'application/json' }, body: deep });
        expect(refused.status, refused.text).toBe(400);
      }
    } finally {
      await bank.close();
    }
    // Ordinary nesting is still fine.
    const ok = await call(ts.baseUrl, 'POST', '/users', { token, json: { clientUserId: 'nested-ok' } });
    expect(ok.status).toBe(201);
  });

  it('refuses a body in a charset other than UTF-8 with 415 in the error shape, creating nothing', async () => {
    const before = await call(ts.baseUrl, 'GET', '/users?limit=1000', { token });
    const res = await call(ts.baseUrl, 'POST', '/users', { token, raw: JSON.stringify({ clientUserId: 'utf16' }), contentType: 'application/json; charset=utf-16' });
    expect(res.status).toBe(415);
    expect(codeOf(res)).toBe('unsupported_media_type');
    const after = await call(ts.baseUrl, 'GET', '/users?limit=1000', { token });
    expect((after.body as { data: unknown[] }).data.length).toBe((before.body as { data: unknown[] }).data.length);
  });

  it('treats Content-Type: application/json with an empty body as no body on a POST that takes none', async () => {
    const res = await call(ts.baseUrl, 'POST', '/sandbox/scheduler/run', { headers: admin, raw: '' });
    expect(res.status).toBe(200);
  });

  it('reads query integers as decimal digits only: offset=0x10 or 1e1 is a 400', async () => {
    for (const offset of ['0x10', '1e1', '0b1', '+5']) {
      const res = await call(ts.baseUrl, 'GET', `/users?offset=${encodeURIComponent(offset)}`, { token });
      expect(res.status, offset).toBe(400);
      expect(JSON.stringify(res.body), offset).toContain('offset');
    }
    expect((await call(ts.baseUrl, 'GET', '/users?offset=16', { token })).status).toBe(200);
  });

  it('refuses impossible dates (no rolling over) for expiresAt, an outage and an auth request expiry', async () => {
    const now = await domainNow();
    const bad = impossibleDateSoon(now);
    const patch = await call(ts.baseUrl, 'PATCH', `/users/${userId}/connections/${connectionId}`, { token, json: { expiresAt: bad } });
    expect(patch.status, bad).toBe(400);
    expect(JSON.stringify(patch.body)).toContain('expiresAt');

    const nextYear = now.getUTCFullYear() + 1;
    const catalog = await call(ts.baseUrl, 'GET', '/oidc/.well-known/all-connections');
    const pensionBee = (catalog.body as { id: string; name: string }[]).find((c) => c.name === 'PensionBee');
    for (const until of [`${nextYear}-02-30T12:00:00Z`, `${nextYear}-04-31T00:00:00Z`, `${nextYear}-01-01T24:30:00Z`]) {
      const outage = await call(ts.baseUrl, 'POST', `/sandbox/providers/${pensionBee?.id}/outage`, { headers: admin, json: { until } });
      expect(outage.status, until).toBe(400);
    }

    const ar = await call(ts.baseUrl, 'POST', '/auth-requests', { token, json: { redirectUri: REDIRECT_URI, scope: `id:${MODELO_ID} openid`, userId, expirationDateTime: bad } });
    expect(ar.status).toBe(400);
    expect(codeOf(ar)).toBe('invalid_expiration_date_time');
  });

  it('refuses an auth request for a bank id that is not in the catalog', async () => {
    const res = await call(ts.baseUrl, 'POST', '/auth-requests', { token, json: { redirectUri: REDIRECT_URI, scope: 'id:00000000000000000000000000000000 openid', userId } });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('scope');
  });

  it('does not complete an auth request with the code of another of the same client\'s auth requests', async () => {
    const create = async (): Promise<{ id: string; redirectParams: { authUrl: string; state: string } }> => {
      const res = await call(ts.baseUrl, 'POST', '/auth-requests', { token, json: { redirectUri: REDIRECT_URI, scope: `id:${MODELO_ID} openid`, userId } });
      expect(res.status).toBe(201);
      return (res.body as { data: { id: string; redirectParams: { authUrl: string; state: string } } }).data;
    };
    const a = await create();
    const b = await create();
    const callback = await runJourney(a.redirectParams.authUrl);
    const code = callback.get('code');
    expect(code).not.toBeNull();
    const stolen = await call(ts.baseUrl, 'PATCH', `/auth-requests/${b.id}`, { token, json: { authParams: { code } } });
    expect(stolen.status).toBe(400);
    expect(codeOf(stolen)).toBe('invalid_code');
    const own = await call(ts.baseUrl, 'PATCH', `/auth-requests/${a.id}`, { token, json: { authParams: { code, state: callback.get('state') } } });
    expect(own.status).toBe(200);
    expect((own.body as { data: { status: string } }).data.status).toBe('complete');
  });

  it('refuses a request object without exp, and the same signed object a second time', async () => {
    const issuer = `${ts.baseUrl}/oidc`;
    const noExp = await new SignJWT({ client_id: client.clientId, scope: `id:${MODELO_ID} openid`, redirect_uri: REDIRECT_URI, response_type: 'code', state: 's', nonce: 'n' })
      .setProtectedHeader({ alg: 'HS256' }).setIssuer(client.clientId).setAudience(issuer).setIssuedAt()
      .sign(new TextEncoder().encode(client.clientSecret));
    const post = (jws: string): Promise<Res> => call(ts.baseUrl, 'POST', '/request', { raw: jws, contentType: 'application/jws' });
    const refused = await post(noExp);
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('exp');

    const farFuture = await new SignJWT({ client_id: client.clientId, scope: `id:${MODELO_ID} openid`, redirect_uri: REDIRECT_URI, response_type: 'code' })
      .setProtectedHeader({ alg: 'HS256' }).setIssuer(client.clientId).setAudience(issuer).setIssuedAt().setExpirationTime('30d')
      .sign(new TextEncoder().encode(client.clientSecret));
    expect((await post(farFuture)).status).toBe(400);

    const jws = await client.mh.requestObject({ scope: `id:${MODELO_ID} openid`, state: 'st', nonce: 'no', claims: { id_token: { sub: { essential: true, value: userId } } } });
    const first = await post(jws);
    expect(first.status).toBe(201);
    const second = await post(jws);
    expect(second.status).toBe(400);
    expect(second.text).toContain('already been used');
  });

  it('lets a client authenticate only with its registered token_endpoint_auth_method', async () => {
    const viaPost = await fetch(`${ts.baseUrl}/oidc/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'user:read', client_id: client.clientId, client_secret: client.clientSecret }).toString(),
    });
    expect(viaPost.status).toBe(401);
    expect(((await viaPost.json()) as { error: string }).error).toBe('invalid_client');
    expect((await requestToken(ts.baseUrl, client, { scope: 'user:read' })).status).toBe(200);

    const postClient = await officialClient(ts.baseUrl, 'client_secret_post');
    expect((await requestToken(ts.baseUrl, postClient, { scope: 'user:read' })).status).toBe(401);
    const asRegistered = await fetch(`${ts.baseUrl}/oidc/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'user:read', client_id: postClient.clientId, client_secret: postClient.clientSecret }).toString(),
    });
    expect(asRegistered.status).toBe(200);
  });

  it('advertises discovery URLs under PUBLIC_URL whatever Host or X-Forwarded-Host the request carries', async () => {
    const discovery = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const url = new URL(`${ts.baseUrl}/oidc/.well-known/openid-configuration`);
      const req = http.request({
        host: url.hostname, port: url.port, path: url.pathname, method: 'GET',
        headers: { host: 'evil.example:8443', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' },
      }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
      });
      req.on('error', reject);
      req.end();
    });
    const urls = Object.entries(discovery).filter((e): e is [string, string] => typeof e[1] === 'string' && /^https?:/.test(e[1]));
    expect(urls.length).toBeGreaterThan(4);
    for (const [key, value] of urls) expect(value, key).toMatch(new RegExp(`^${ts.baseUrl.replace(/[.]/g, '\\.')}/`));
  });

  it('refuses payments: 400 payments_not_supported from POST /auth-requests (official client), an error redirect from authorize', async () => {
    const err = await rejection(client.mh.createAuthRequest({
      redirectUri: REDIRECT_URI, userId, scope: `id:${MODELO_ID} openid`,
      payment: { payeeId: 'payee-1', amount: 100, payeeRef: 'ref', payerRef: 'ref' },
    } as Parameters<typeof client.mh.createAuthRequest>[0]));
    expect(err.response?.statusCode).toBe(400);
    expect(err.response?.body).toContain('payments_not_supported');
    for (const scope of [`payment openid id:${MODELO_ID}`, `openid reverse_payment id:${MODELO_ID}`, `standing_order openid id:${MODELO_ID}`, `openid payee:create id:${MODELO_ID}`]) {
      const res = await call(ts.baseUrl, 'POST', '/auth-requests', { token, json: { redirectUri: REDIRECT_URI, scope, userId } });
      expect(res.status, scope).toBe(400);
      expect(codeOf(res), scope).toBe('payments_not_supported');
    }

    const url = await client.mh.getPaymentAuthorizeUrl({ bankId: MODELO_ID, payeeId: 'payee-1', amount: 100, payeeRef: 'ref', payerRef: 'ref', state: 'pay-state', nonce: 'pay-nonce' } as Parameters<typeof client.mh.getPaymentAuthorizeUrl>[0]);
    const browser = new Browser();
    const page = await browser.follow(url, atRedirect);
    expect(page.location, page.html.slice(0, 300)).not.toBeNull();
    const back = new URL(page.location ?? '');
    expect(`${back.origin}${back.pathname}`).toBe(REDIRECT_URI);
    expect(back.searchParams.get('error')).toBe('invalid_scope');
    expect(back.searchParams.get('error_description')).toMatch(/payment/i);
    expect(back.searchParams.get('state')).toBe('pay-state');
  });

  it('sends anti-framing headers on journey pages and refuses a consent form posted from another site', async () => {
    const url = await client.mh.getAuthorizeUrlForCreatedUser({ bankId: MODELO_ID, userId, state: 'csrf-state', nonce: 'csrf-nonce' });
    const browser = new Browser();
    const consent = await browser.follow(url, atRedirect);
    expect(consent.status).toBe(200);
    const cookie = (browser as unknown as { cookieHeader(): string }).cookieHeader();
    const again = await fetch(consent.url, { headers: { cookie } });
    expect(again.headers.get('x-frame-options')).toBe('DENY');
    expect(again.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");

    const form = parseForms(consent.html, consent.url)[0];
    expect(form).toBeDefined();
    const allow = form?.buttons.find((b) => b.value === 'allow');
    const body = new URLSearchParams({ ...form?.fields, ...(allow !== undefined ? { [allow.name]: allow.value } : {}) }).toString();
    const post = (headers: Record<string, string>): Promise<Response> =>
      fetch(form?.action ?? '', { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
    const forged = await post({ origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('another website');
    expect((await post({ origin: 'https://evil.example' })).status).toBe(403);
    const own = await post({ origin: new URL(ts.baseUrl).origin, 'sec-fetch-site': 'same-origin' });
    expect(own.status).toBe(303);
  });

  it('the sandbox bank redirects only to the redirect URI registered for its client (Mooring\'s callback)', async () => {
    // Mooring's client at the sandbox bank: its certificate and its signing key (the sandbox PKI).
    const bank = await sandboxBank();
    try {
      const consentRes = await bank.call('POST', `${bank.aisp}/account-access-consents`, {
        headers: { authorization: `Bearer ${await bank.clientToken()}`, 'content-type': 'application/json' },
        body: JSON.stringify({ Data: { Permissions: ['ReadAccountsBasic'] }, Risk: {} }),
      });
      expect(consentRes.status, consentRes.text).toBe(201);
      const consentId = String((consentRes.json().Data as { ConsentId: string }).ConsentId);
      const intent = { value: consentId, essential: true };
      const claims = { id_token: { openbanking_intent_id: intent }, userinfo: { openbanking_intent_id: intent } };
      const evil = 'https://evil.example/steal';
      // The registered callback works (the control case)…
      const good = await fetch(bank.authUrl(await bank.requestObject({ redirect_uri: `${ts.baseUrl}/connect/callback`, claims })), { redirect: 'manual' });
      expect(good.status).toBe(303);
      expect(good.headers.get('location')).toContain('/login/');
      // …a properly signed request object naming another redirect URI is refused, never redirected there,
      // whether or not the query repeats it.
      for (const query of [{}, { redirect_uri: evil }]) {
        const url = new URL(bank.authUrl(await bank.requestObject({ redirect_uri: evil, state: 's', claims })));
        for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
        const answer = await fetch(url, { redirect: 'manual' });
        expect(answer.status).toBe(400);
        expect(answer.headers.get('location')).toBeNull();
        const text = await answer.text();
        expect(text).not.toContain(evil);
        expect(text).toMatch(/redirect_uri/);
      }
    } finally {
      await bank.close();
    }
  });
});

describe('the sandbox clock', () => {
  let ts: TestServer;
  beforeAll(async () => {
    // On real time (no fixed start): these tests are about offsets from real time.
    ts = await startTestServer({ sandboxClockStart: null });
  });
  afterAll(async () => ts.stop());

  const clock = async (): Promise<{ now: string; offsetMs: number }> => {
    const res = await call(ts.baseUrl, 'GET', '/sandbox/clock', { headers: admin });
    expect(res.status).toBe(200);
    return res.body as { now: string; offsetMs: number };
  };
  const advance = (value: string): Promise<Res> => call(ts.baseUrl, 'POST', '/sandbox/clock', { headers: admin, json: { advance: value } });

  it('refuses a huge move with 400 and changes nothing; every endpoint keeps working', async () => {
    for (const huge of ['P99999999999999999999D', 'P3654D', 'PT999999999999H', 'P11Y']) {
      const res = await advance(huge);
      expect(res.status, huge).toBe(400);
      expect((await clock()).offsetMs, huge).toBe(0);
    }
    expect((await call(ts.baseUrl, 'GET', '/oidc/.well-known/all-connections')).status).toBe(200);
    expect((await advance('P3000D')).status).toBe(200);
    const tooFar = await advance('P1000D');
    expect(tooFar.status).toBe(400);
    expect(codeOf(tooFar)).toBe('clock_too_far');
    expect((await clock()).offsetMs).toBe(3000 * DAY_MS);
  });

  it('takes any ISO 8601 duration (P1DT6H, PT90M) and returns to real time on DELETE', async () => {
    expect((await call(ts.baseUrl, 'DELETE', '/sandbox/clock', { headers: admin })).status).toBe(200);
    expect((await clock()).offsetMs).toBe(0);
    expect((await advance('P1DT6H')).status).toBe(200);
    expect((await clock()).offsetMs).toBe(30 * 3_600_000);
    expect((await advance('PT90M')).status).toBe(200);
    expect((await clock()).offsetMs).toBe(30 * 3_600_000 + 90 * 60_000);
    for (const bad of ['P', 'PT', '1D', 'P-1D', 'PT0S', 'P1.5D']) expect((await advance(bad)).status, bad).toBe(400);
    const reset = await call(ts.baseUrl, 'DELETE', '/sandbox/clock', { headers: admin });
    expect(reset.status).toBe(200);
    expect((reset.body as { offsetMs: number }).offsetMs).toBe(0);
    expect(Math.abs(new Date((await clock()).now).getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('starts on real time (not failing) when the stored offset is unusable', async () => {
    await ts.server.db.query(
      "insert into settings (key, value) values ('sandbox_clock_offset_ms', '1e20') on conflict (key) do update set value = excluded.value",
    );
    const restarted = await createServer({ config: { ...ts.config, sandboxMtlsPort: 0 }, logger: createLogger('silent'), adminToken: ADMIN_TOKEN, db: ts.testDb.db, jobs: false });
    try {
      const app = restarted.app;
      if (app === null) throw new Error('no app');
      const catalog = await app.inject({ method: 'GET', url: '/oidc/.well-known/all-connections' });
      expect(catalog.statusCode).toBe(200);
      const c = await app.inject({ method: 'GET', url: '/sandbox/clock', headers: admin });
      expect(c.statusCode).toBe(200);
      expect((c.json() as { offsetMs: number }).offsetMs).toBe(0);
    } finally {
      await restarted.close();
    }
  });
});
