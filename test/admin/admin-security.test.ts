/**
 * The admin token and the operator's sessions (SPEC section 1): a weak token stops start-up, wrong
 * tokens are throttled per client address, and a signed-in session lives server-side: it ends at
 * sign-out and when idle.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { resolveAdminToken } from '../../src/admin/token.ts';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.ts';
import { Browser } from '../helpers/browser.ts';
import { createTestDb } from '../helpers/db.ts';

const HOUR_MS = 3_600_000;

describe('the admin token', () => {
  const configError = (token: string): ConfigError | null => {
    try {
      loadConfig({ MOORING_ADMIN_TOKEN: token });
      return null;
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
  };

  it('stops start-up on a token shorter than 32 characters or with fewer than 10 distinct ones, saying how to make one', () => {
    for (const weak of ['aaaaaaaaaaaaaaaa', 'abcdefghijklmnopqrstuvwxyz01234', 'abababababababababababababababababababab', 'abcdefghi'.repeat(5)]) {
      const err = configError(weak);
      expect(err, weak).not.toBeNull();
      expect(err?.message, weak).toContain('MOORING_ADMIN_TOKEN');
      expect(err?.message, weak).toContain('openssl rand -base64 32');
    }
    expect(configError(ADMIN_TOKEN)).toBeNull();
    expect(configError('Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWo=')).toBeNull();
  });

  it('generates a strong token when none is configured, and refuses a weak one kept in the data directory', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mooring-admin-'));
    try {
      for (let i = 0; i < 20; i++) {
        const sub = path.join(dir, `gen-${i}`);
        const { token, source } = resolveAdminToken(null, sub);
        expect(source).toBe('generated');
        expect(token.length).toBeGreaterThanOrEqual(32);
        expect(new Set(token).size).toBeGreaterThanOrEqual(10);
        expect(configError(token)).toBeNull();
      }
      const weakDir = path.join(dir, 'weak');
      fs.mkdirSync(weakDir);
      fs.writeFileSync(path.join(weakDir, 'admin-token'), 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n');
      expect(() => resolveAdminToken(null, weakDir)).toThrow(/openssl rand -base64 32/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('admin sign-in and throttling', () => {
  let ts: TestServer;
  let realNow = Date.now();
  beforeAll(async () => {
    ts = await startTestServer({}, { securityNow: () => realNow });
  });
  afterAll(async () => ts.stop());

  const sessionCookie = (browser: Browser): string => (browser as unknown as { cookieHeader(): string }).cookieHeader();
  const adminPage = async (cookie: string): Promise<string> => (await (await fetch(`${ts.baseUrl}/admin`, { headers: { cookie } })).text());

  it('keeps sessions server-side: only a hash is stored, and signing out makes the old cookie useless', async () => {
    const browser = new Browser();
    const signIn = await browser.follow(`${ts.baseUrl}/admin`);
    const page = await browser.submit(signIn, { token: ADMIN_TOKEN });
    expect(page.html).toContain('Mooring operations');
    const cookie = sessionCookie(browser);
    expect(cookie).toMatch(/^mooring_admin=/);
    const value = cookie.split('=')[1] ?? '';
    const stored = await ts.server.db.query<{ id_hash: string }>('select id_hash from admin_sessions');
    expect(stored.rows.length).toBeGreaterThan(0);
    expect(stored.rows.map((r) => r.id_hash)).not.toContain(value);
    expect(await adminPage(cookie)).toContain('Mooring operations');

    const out = await browser.submit(page, {}, { actionIncludes: '/admin/logout' });
    expect(out.html).toContain('Admin token');
    // The browser forgot the cookie; one kept by anyone else must not work either.
    const after = await adminPage(cookie);
    expect(after).toContain('Admin token');
    expect(after).not.toContain('Mooring operations');
  });

  it('ends a session left idle for longer than 12 hours', async () => {
    const browser = new Browser();
    const signIn = await browser.follow(`${ts.baseUrl}/admin`);
    await browser.submit(signIn, { token: ADMIN_TOKEN });
    const cookie = sessionCookie(browser);
    realNow += 11 * HOUR_MS;
    expect(await adminPage(cookie)).toContain('Mooring operations');
    realNow += 11 * HOUR_MS;
    expect(await adminPage(cookie)).toContain('Mooring operations');
    realNow += 12 * HOUR_MS + 60_000;
    expect(await adminPage(cookie)).toContain('Admin token');
  });

  it('answers 429 with Retry-After to every admin authentication after 10 failures in a minute from one address, then lets it in again', async () => {
    const wrong = { authorization: 'Bearer not-the-admin-token-but-long-enough-000' };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${ts.baseUrl}/admin/api/overview`, { headers: wrong })).status);
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${ts.baseUrl}/sandbox/clock`, { headers: wrong })).status);
    for (let i = 0; i < 2; i++) {
      statuses.push((await fetch(`${ts.baseUrl}/oidc/reg`, { method: 'POST', headers: { ...wrong, 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:1/cb'] }) })).status);
    }
    for (let i = 0; i < 2; i++) {
      statuses.push((await fetch(`${ts.baseUrl}/admin/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=wrong-guess' })).status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 401, 401, 401, 401]);

    const right = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const throttled = [
      await fetch(`${ts.baseUrl}/admin/api/overview`, { headers: right }),
      await fetch(`${ts.baseUrl}/sandbox/clock`, { headers: wrong }),
      await fetch(`${ts.baseUrl}/oidc/reg`, { method: 'POST', headers: { ...right, 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:1/cb'] }) }),
      await fetch(`${ts.baseUrl}/admin/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${encodeURIComponent(ADMIN_TOKEN)}` }),
    ];
    for (const res of throttled) {
      expect(res.status, res.url).toBe(429);
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter, res.url).toBeGreaterThanOrEqual(1);
      expect(retryAfter, res.url).toBeLessThanOrEqual(60);
    }
    const body = (await (await fetch(`${ts.baseUrl}/admin/api/overview`, { headers: right })).json()) as { code: string };
    expect(body.code).toBe('too_many_attempts');
    // The catalog and API clients are not affected.
    expect((await fetch(`${ts.baseUrl}/oidc/.well-known/all-connections`)).status).toBe(200);

    realNow += 61_000;
    expect((await fetch(`${ts.baseUrl}/admin/api/overview`, { headers: right })).status).toBe(200);
  });
});

describe('admin-token throttling at client registration', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(async () => ts.stop());

  const register = async (path: string, token: string): Promise<Response> => fetch(`${ts.baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:1/cb'] }),
  });

  it('counts wrong tokens at every spelling of the registration path the provider routes (trailing slash, any case)', async () => {
    const wrong = 'not-the-admin-token-but-long-enough-000';
    const paths = ['/oidc/reg/', '/oidc/REG', '/oidc/Reg/', '/oidc/reg'];
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await register(paths[i % paths.length] ?? '/oidc/reg', wrong)).status);
    expect(statuses).toEqual(Array(10).fill(401));
    for (const path of paths) {
      const res = await register(path, ADMIN_TOKEN);
      expect(res.status, path).toBe(429);
      expect(Number(res.headers.get('retry-after')), path).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('TRUST_PROXY', () => {
  const trustProxy = (value: string): unknown => loadConfig({ TRUST_PROXY: value }).trustProxy;

  it('takes a hop count or a list of proxy addresses, keeps true, and stops start-up on anything else naming the variable', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(trustProxy('false')).toBe(false);
    expect(trustProxy('0')).toBe(false);
    expect(trustProxy('1')).toBe(1);
    expect(trustProxy('2')).toBe(2);
    expect(trustProxy('true')).toBe(true);
    expect(trustProxy('10.0.0.0/8, 192.168.1.7,::1,fd00::/8')).toEqual(['10.0.0.0/8', '192.168.1.7', '::1', 'fd00::/8']);
    for (const bad of ['-1', '1.5', 'maybe', '10.0.0.0/33', '10.0.0.300', 'proxy.example.com', ',', '10.0.0.1/8/1']) {
      expect(() => loadConfig({ TRUST_PROXY: bad }), bad).toThrow(/TRUST_PROXY/);
    }
  });
});

describe('the admin lockout behind one trusted proxy (TRUST_PROXY=1)', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ trustProxy: loadConfig({ TRUST_PROXY: '1' }).trustProxy });
  });
  afterAll(async () => ts.stop());

  const overview = async (token: string, forwardedFor: string): Promise<number> =>
    (await fetch(`${ts.baseUrl}/admin/api/overview`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': forwardedFor } })).status;

  it('is not escaped by forging the left-most X-Forwarded-For entries: the address the proxy saw is the one counted', async () => {
    const wrong = 'not-the-admin-token-but-long-enough-000';
    const statuses: number[] = [];
    // The proxy appends the address it saw (203.0.113.9); everything left of it is the client's to write.
    for (let i = 0; i < 10; i++) statuses.push(await overview(wrong, `198.51.100.${i + 1}, 203.0.113.9`));
    expect(statuses).toEqual(Array(10).fill(401));
    expect(await overview(ADMIN_TOKEN, '198.51.100.77, 203.0.113.9')).toBe(429);
    expect(await overview(ADMIN_TOKEN, '203.0.113.9')).toBe(429);
    // Another client behind the same proxy is not locked out.
    expect(await overview(ADMIN_TOKEN, '203.0.113.10')).toBe(200);
  });
});

describe('a change of the admin token', () => {
  it('signs out the sessions signed in under the old token: after a restart with a new token the old cookie opens no /admin page', async () => {
    const testDb = await createTestDb();
    try {
      const before = await startTestServer({}, { testDb });
      const browser = new Browser();
      let cookie = '';
      try {
        const page = await browser.submit(await browser.follow(`${before.baseUrl}/admin`), { token: ADMIN_TOKEN });
        expect(page.html).toContain('Mooring operations');
        cookie = (browser as unknown as { cookieHeader(): string }).cookieHeader();
        expect((await (await fetch(`${before.baseUrl}/admin`, { headers: { cookie } })).text())).toContain('Mooring operations');
      } finally {
        await before.stop();
      }
      const stored = await testDb.db.query<{ token_fingerprint: string }>('select token_fingerprint from admin_sessions');
      expect(stored.rows).toHaveLength(1);
      expect(stored.rows[0]?.token_fingerprint).not.toContain(ADMIN_TOKEN);

      const newToken = 'a-new-admin-token-ZYXWVUTSRQ9876543210';
      const after = await startTestServer({}, { testDb, adminToken: newToken });
      try {
        for (const path of ['/admin', '/admin/search?q=x']) {
          const res = await fetch(`${after.baseUrl}${path}`, { headers: { cookie } });
          const html = await res.text();
          expect(html, path).not.toContain('Mooring operations');
          expect(html, path).toContain('Admin token');
        }
        expect((await testDb.db.query('select 1 from admin_sessions')).rows).toHaveLength(0);
        // The new token signs in as usual.
        const again = new Browser();
        expect((await again.submit(await again.follow(`${after.baseUrl}/admin`), { token: newToken })).html).toContain('Mooring operations');
      } finally {
        await after.stop();
      }
    } finally {
      await testDb.drop();
    }
  });
});

describe('cross-site posts to the console', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(async () => ts.stop());

  const signIn = (path: string, headers: Record<string, string>): Promise<Response> => fetch(`${ts.baseUrl}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: `token=${encodeURIComponent(ADMIN_TOKEN)}`,
  });

  it('are refused on a percent-encoded spelling of an admin path as on the plain one', async () => {
    for (const path of ['/admin/login', '/%61dmin/login', '/%61%64%6D%69%6E/login', '/admin/%6Cogin']) {
      const forged = await signIn(path, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
      expect(forged.status, path).toBe(403);
      expect(forged.headers.get('set-cookie'), path).toBeNull();
      expect(await forged.text(), path).toContain('another website');
      expect((await signIn(path, { origin: 'https://evil.example' })).status, path).toBe(403);
    }
    // The same spellings do reach the sign-in route: from Mooring's own page it signs in.
    const own = await signIn('/%61dmin/login', { origin: new URL(ts.baseUrl).origin, 'sec-fetch-site': 'same-origin' });
    expect(own.status).toBe(303);
    expect(own.headers.get('set-cookie')).toMatch(/^mooring_admin=/);
  });
});
