/**
 * Authentication and scopes over HTTP (SPEC section 2): who may call what, and how a refusal looks.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.ts';
import { domainNow } from '../helpers/time.ts';
import { accessToken, ALL_API_SCOPES, apiClient, call, connectBank, requestToken, type ApiClient } from '../helpers/api.ts';

interface ErrorBody {
  code: string;
  message: string;
  details?: unknown;
}

const TOKEN_TTL_MS = 3600_000;

describe('authentication and scopes', () => {
  let ts: TestServer;
  /** The server's domain time (tests start it at a fixed instant). */
  let now: () => number;
  let a: ApiClient;
  let b: ApiClient;
  let userA: string;
  let userB: string;
  let connectionA: string;

  beforeAll(async () => {
    ts = await startTestServer();
    now = await domainNow(ts.baseUrl, ADMIN_TOKEN);
    a = await apiClient(ts.baseUrl);
    b = await apiClient(ts.baseUrl);
    userA = (await a.mh.registerUser({ clientUserId: 'a-1' })).userId;
    userB = (await b.mh.registerUser({ clientUserId: 'b-1' })).userId;
    connectionA = await connectBank(a, userA);
  });
  afterAll(async () => ts.stop());

  const protectedCalls = (): [string, string, unknown?][] => [
    ['GET', '/users'],
    ['POST', '/users', {}],
    ['GET', `/users/${userA}`],
    ['DELETE', `/users/${userA}`],
    ['GET', `/users/${userA}/connections`],
    ['PATCH', `/users/${userA}/connections/${connectionA}`, { expiresAt: new Date(now() + 86_400_000).toISOString() }],
    ['GET', `/users/${userA}/connections/${connectionA}/syncs`],
    ['POST', `/v2.0/sync/${connectionA}`, {}],
  ];

  it('answers 401 with { code, message } and a WWW-Authenticate: Bearer challenge when no token is sent', async () => {
    for (const [method, path, json] of protectedCalls()) {
      const res = await call(ts.baseUrl, method, path, json === undefined ? {} : { json });
      expect(res.status, `${method} ${path}`).toBe(401);
      const body = res.body as ErrorBody;
      expect(body.code, `${method} ${path}`).toEqual(expect.stringMatching(/^[a-z]+(_[a-z]+)*$/));
      expect(body.message, `${method} ${path}`).toEqual(expect.any(String));
      expect(res.headers.get('www-authenticate'), `${method} ${path}`).toMatch(/^Bearer\b/i);
    }
    // Nothing was deleted or created by the refused calls.
    expect((await a.mh.getUser({ userId: userA })).userId).toBe(userA);
    expect((await a.mh.getUsers()).data).toHaveLength(1);
  });

  it('answers 401 rather than 400 to an unauthenticated request whose input is also invalid', async () => {
    const badBody = await call(ts.baseUrl, 'POST', '/users', { json: { clientUserId: 123, extra: true } });
    expect(badBody.status).toBe(401);
    const badQuery = await call(ts.baseUrl, 'GET', '/users?limit=0');
    expect(badQuery.status).toBe(401);
  });

  it('answers 401 to a garbage, an unknown, a non-Bearer and an expired token, and 200 to a valid one', async () => {
    const valid = await accessToken(ts.baseUrl, a, 'user:read');
    expect((await call(ts.baseUrl, 'GET', '/users', { token: valid })).status).toBe(200);

    // Issued two hours ago (tokens live one hour): fake only the clock the provider stamps tokens with.
    const issuedAt = Date.now() - 2 * TOKEN_TTL_MS;
    vi.useFakeTimers({ toFake: ['Date'], now: issuedAt });
    let expired: string;
    let acceptedWhileFresh: number;
    try {
      expired = await accessToken(ts.baseUrl, a, 'user:read');
      // Within its lifetime the same token works: the 401 below is about expiry alone.
      acceptedWhileFresh = (await call(ts.baseUrl, 'GET', '/users', { token: expired })).status;
    } finally {
      vi.useRealTimers();
    }
    expect(acceptedWhileFresh).toBe(200);

    const attempts: [string, Record<string, string>][] = [
      ['garbage', { authorization: 'Bearer !!not a token at all!!' }],
      ['unknown', { authorization: `Bearer ${randomBytes(32).toString('base64url')}` }],
      ['a valid token under the Basic scheme', { authorization: `Basic ${valid}` }],
      ['empty bearer', { authorization: 'Bearer ' }],
      ['expired', { authorization: `Bearer ${expired}` }],
    ];
    for (const [what, headers] of attempts) {
      const res = await call(ts.baseUrl, 'GET', '/users', { headers });
      expect(res.status, what).toBe(401);
      expect((res.body as ErrorBody).code, what).toEqual(expect.any(String));
      expect((res.body as ErrorBody).message, what).toEqual(expect.any(String));
      expect(res.headers.get('www-authenticate'), what).toMatch(/^Bearer\b/i);
    }
  });

  it('answers 403 naming the missing scope to a token that lacks it, and changes nothing', async () => {
    const readOnly = await accessToken(ts.baseUrl, a, 'user:read');

    const create = await call(ts.baseUrl, 'POST', '/users', { token: readOnly, json: { clientUserId: 'never' } });
    expect(create.status).toBe(403);
    expect((create.body as ErrorBody).code).toEqual(expect.any(String));
    expect((create.body as ErrorBody).message).toContain('user:create');

    const del = await call(ts.baseUrl, 'DELETE', `/users/${userA}`, { token: readOnly });
    expect(del.status).toBe(403);
    expect((del.body as ErrorBody).message).toContain('user:delete');

    const patch = await call(ts.baseUrl, 'PATCH', `/users/${userA}/connections/${connectionA}`, { token: readOnly, json: { expiresAt: new Date(now() + 86_400_000).toISOString() } });
    expect(patch.status).toBe(403);
    expect((patch.body as ErrorBody).message).toContain('user:update');

    const syncHalf = await accessToken(ts.baseUrl, a, 'accounts:read', userA);
    const sync = await call(ts.baseUrl, 'POST', `/v2.0/sync/${connectionA}`, { token: syncHalf, json: {} });
    expect(sync.status).toBe(403);
    expect((sync.body as ErrorBody).message).toContain('accounts:write:all');
    expect((sync.body as ErrorBody).message).not.toContain('accounts:read,');

    // The same calls with the scope succeed, so the 403s were about scope and nothing else.
    const users = (await call(ts.baseUrl, 'GET', '/users', { token: readOnly })).body as { data: { userId: string; clientUserId?: string }[] };
    expect(users.data.map((u) => u.clientUserId)).toEqual(['a-1']);
    const syncs = await a.mh.getConnectionSyncs({ userId: userA, connectionId: connectionA });
    expect(syncs.data).toHaveLength(1);
  });

  it('refuses a user:create token (400 invalid_scope) to a client registered with scope "user:read"', async () => {
    const narrow = await apiClient(ts.baseUrl, { scope: 'user:read' });
    const res = await requestToken(ts.baseUrl, narrow, { scope: 'user:create' });
    expect(res.status).toBe(400);
    expect((res.body as { error: string }).error).toBe('invalid_scope');
    const mixed = await requestToken(ts.baseUrl, narrow, { scope: 'user:read user:create' });
    expect(mixed.status).toBe(400);
    expect((mixed.body as { error: string }).error).toBe('invalid_scope');

    const read = await accessToken(ts.baseUrl, narrow, 'user:read');
    expect((await call(ts.baseUrl, 'GET', '/users', { token: read })).status).toBe(200);
  });

  it("refuses a client_credentials token for another client's user (400 invalid_grant) and grants one for its own", async () => {
    const res = await requestToken(ts.baseUrl, b, { scope: 'user:read', sub: userA });
    expect(res.status).toBe(400);
    expect((res.body as { error: string }).error).toBe('invalid_grant');
    expect(res.body).not.toHaveProperty('access_token');

    const unknown = await requestToken(ts.baseUrl, b, { scope: 'user:read', sub: 'f'.repeat(24) });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toEqual(res.body);

    const own = await requestToken(ts.baseUrl, b, { scope: 'user:read', sub: userB });
    expect(own.status).toBe(200);
  });

  it('answers 400 invalid_grant, never a 500, to a client_credentials sub no user could have', async () => {
    for (const sub of ['\u0000', `${userB}\u0000`, 'x'.repeat(5000), 'not-hex', "' or 1=1 --"]) {
      const res = await requestToken(ts.baseUrl, b, { scope: 'user:read', sub });
      expect.soft(res.status, JSON.stringify(sub.slice(0, 30))).toBe(400);
      expect.soft((res.body as { error?: string } | undefined)?.error, JSON.stringify(sub.slice(0, 30))).toBe('invalid_grant');
    }
  });

  it('answers 403 to POST /v2.0/sync/:connectionId with a token that has the scopes but no sub, and syncs with one', async () => {
    const noSub = await accessToken(ts.baseUrl, a, 'accounts:read accounts:write:all');
    const res = await call(ts.baseUrl, 'POST', `/v2.0/sync/${connectionA}`, { token: noSub, json: {} });
    expect(res.status).toBe(403);
    expect((res.body as ErrorBody).code).toEqual(expect.any(String));
    expect((res.body as ErrorBody).message).toMatch(/sub|user/);
    expect((await a.mh.getConnectionSyncs({ userId: userA, connectionId: connectionA })).data).toHaveLength(1);

    const withSub = await accessToken(ts.baseUrl, a, ALL_API_SCOPES, userA);
    const ok = await call(ts.baseUrl, 'POST', `/v2.0/sync/${connectionA}`, { token: withSub, json: { customerIpAddress: '203.0.113.9' } });
    expect(ok.status).toBe(200);
    expect((ok.body as { data: { status: string } }).data.status).toBe('ok');
    expect((await a.mh.getConnectionSyncs({ userId: userA, connectionId: connectionA })).data).toHaveLength(2);
  });
});
