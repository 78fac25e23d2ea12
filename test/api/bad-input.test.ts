/**
 * Bad input (SPEC section 3): a 400 naming the bad field (or 404/401/413 where that is the truth),
 * never a 500, and never a change to stored data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.ts';
import { domainNow } from '../helpers/time.ts';
import { REDIRECT_URI } from '../helpers/moneyhub.ts';
import { accessToken, ALL_API_SCOPES, apiClient, call, connectBank, DAY_MS, MODELO_ID, type ApiClient } from '../helpers/api.ts';

interface ErrorBody {
  code: string;
  message: string;
  details?: unknown;
}

interface ConnectionJson {
  id: string;
  expiresAt: string | null;
  userConsentedAt: string;
}

const BODY_LIMIT_BYTES = 100_000;

describe('bad input changes nothing', () => {
  let ts: TestServer;
  /** The server's domain time (tests start it at a fixed instant). */
  let now: () => number;
  let client: ApiClient;
  let token: string;
  let userId: string;
  let connectionId: string;
  let syncId: string;

  const userIds = async (): Promise<string[]> => {
    const res = await call(ts.baseUrl, 'GET', '/users?limit=1000', { token });
    expect(res.status).toBe(200);
    return (res.body as { data: { userId: string }[] }).data.map((u) => u.userId);
  };

  const connection = async (): Promise<ConnectionJson> => {
    const res = await call(ts.baseUrl, 'GET', `/users/${userId}/connections/${connectionId}`, { token });
    expect(res.status).toBe(200);
    return (res.body as { data: ConnectionJson }).data;
  };

  const clientCount = async (): Promise<number> => {
    const r = await ts.server.db.query<{ n: string | number }>("select count(*) as n from oidc_models where kind = 'Client'");
    return Number(r.rows[0]?.n);
  };

  beforeAll(async () => {
    ts = await startTestServer();
    now = await domainNow(ts.baseUrl, ADMIN_TOKEN);
    client = await apiClient(ts.baseUrl);
    token = await accessToken(ts.baseUrl, client, ALL_API_SCOPES);
    userId = (await client.mh.registerUser({ clientUserId: 'bad-input' })).userId;
    connectionId = await connectBank(client, userId);
    syncId = (await client.mh.getConnectionSyncs({ userId, connectionId })).data[0]?.id ?? '';
    expect(syncId).not.toBe('');
  });
  afterAll(async () => ts.stop());

  it('answers 400 invalid_json to a malformed JSON body and creates no user', async () => {
    const before = await userIds();
    for (const raw of ['{"clientUserId": ', '{clientUserId: "x"}', 'not json', '{"a":1}}']) {
      const res = await call(ts.baseUrl, 'POST', '/users', { token, raw });
      expect(res.status, raw).toBe(400);
      expect((res.body as ErrorBody).code, raw).toBe('invalid_json');
      expect((res.body as ErrorBody).message, raw).toEqual(expect.any(String));
    }
    const patch = await call(ts.baseUrl, 'PATCH', `/users/${userId}/connections/${connectionId}`, { token, raw: '{"expiresAt": "2030-' });
    expect(patch.status).toBe(400);
    expect((patch.body as ErrorBody).code).toBe('invalid_json');
    expect(await userIds()).toEqual(before);
  });

  it('answers 400 naming the field to a body of the wrong type and creates no user', async () => {
    const before = await userIds();
    for (const json of [{ clientUserId: 123 }, { clientUserId: null }, { clientUserId: ['x'] }, { clientUserId: '' }]) {
      const res = await call(ts.baseUrl, 'POST', '/users', { token, json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect((res.body as ErrorBody).message, JSON.stringify(json)).toContain('clientUserId');
      expect(JSON.stringify((res.body as ErrorBody).details), JSON.stringify(json)).toContain('clientUserId');
    }
    expect(await userIds()).toEqual(before);
  });

  it('answers 400 naming clientUserId (never a 500) to a clientUserId holding a NUL character, and creates no user', async () => {
    const before = await userIds();
    const res = await call(ts.baseUrl, 'POST', '/users', { token, json: { clientUserId: 'a\u0000b' } });
    expect(res.status).toBe(400);
    expect((res.body as ErrorBody).message).toContain('clientUserId');
    expect(await userIds()).toEqual(before);
  });

  it('answers 400 naming the unknown field to a body with fields the schema does not know', async () => {
    const before = await userIds();
    const user = await call(ts.baseUrl, 'POST', '/users', { token, json: { clientUserId: 'ok', isAdmin: true } });
    expect(user.status).toBe(400);
    expect((user.body as ErrorBody).message).toContain('isAdmin');
    expect(await userIds()).toEqual(before);

    const c = await connection();
    const patch = await call(ts.baseUrl, 'PATCH', `/users/${userId}/connections/${connectionId}`, {
      token, json: { expiresAt: new Date(now() + 10 * DAY_MS).toISOString(), status: 'ok' },
    });
    expect(patch.status).toBe(400);
    expect((patch.body as ErrorBody).message).toContain('status');
    expect(await connection()).toEqual(c);

    const userToken = await accessToken(ts.baseUrl, client, ALL_API_SCOPES, userId);
    const sync = await call(ts.baseUrl, 'POST', `/v2.0/sync/${connectionId}`, { token: userToken, json: { customerIpAddress: '203.0.113.9', force: true } });
    expect(sync.status).toBe(400);
    expect((sync.body as ErrorBody).message).toContain('force');
    expect((await client.mh.getConnectionSyncs({ userId, connectionId })).data).toHaveLength(1);
  });

  it.each([
    ['not an IP address', 'banana'],
    ['an out-of-range IPv4 address', '999.1.1.1'],
    ['a header injection', '203.0.113.9\r\nX-Evil: 1'],
    ['a NUL character', '203.0.113.9\u0000'],
  ])('refuses POST /v2.0/sync with a customerIpAddress that is %s: 400 naming it, no sync recorded, status unchanged', async (_what, customerIpAddress) => {
    const userToken = await accessToken(ts.baseUrl, client, ALL_API_SCOPES, userId);
    const syncsBefore = (await client.mh.getConnectionSyncs({ userId, connectionId })).data.map((x) => x.id);
    const before = await connection();
    const res = await call(ts.baseUrl, 'POST', `/v2.0/sync/${connectionId}`, { token: userToken, json: { customerIpAddress } });
    expect.soft(res.status).toBe(400);
    expect.soft((res.body as Partial<ErrorBody> | undefined)?.message ?? '').toContain('customerIpAddress');
    expect((await client.mh.getConnectionSyncs({ userId, connectionId })).data.map((x) => x.id)).toEqual(syncsBefore);
    const state = (c: ConnectionJson): unknown => {
      const { status, error, lastAttemptAt, lastUpdated } = c as ConnectionJson & Record<string, unknown>;
      return { status, error, lastAttemptAt, lastUpdated };
    };
    expect(state(await connection())).toEqual(state(before));
  });

  it('accepts POST /v2.0/sync with an IPv4 or IPv6 customerIpAddress (the refusals above were about the value)', async () => {
    const userToken = await accessToken(ts.baseUrl, client, ALL_API_SCOPES, userId);
    for (const customerIpAddress of ['203.0.113.9', '2001:db8::1']) {
      const res = await call(ts.baseUrl, 'POST', `/v2.0/sync/${connectionId}`, { token: userToken, json: { customerIpAddress } });
      expect(res.status, customerIpAddress).toBe(200);
      expect((res.body as { data: { status: string } }).data.status, customerIpAddress).toBe('ok');
    }
  });

  it('answers 413 to a body over 100 kB and creates no user', async () => {
    const before = await userIds();
    const res = await call(ts.baseUrl, 'POST', '/users', { token, json: { clientUserId: 'x'.repeat(BODY_LIMIT_BYTES + 1) } });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    expect(await userIds()).toEqual(before);
    // Just under the limit is parsed (and then refused by the schema for its length, not its size).
    const under = await call(ts.baseUrl, 'POST', '/users', { token, json: { clientUserId: 'x'.repeat(BODY_LIMIT_BYTES - 100) } });
    expect(under.status).toBe(400);
  });

  it.each<[string, () => unknown]>([
    ['not a date', () => 'next tuesday'],
    ['in the past', () => new Date(now() - DAY_MS).toISOString()],
    ['now, which is not in the future', () => new Date(now() - 1000).toISOString()],
    ['beyond 90 days', () => new Date(now() + 91 * DAY_MS).toISOString()],
    ['a bare date without a time', () => new Date(now() + 10 * DAY_MS).toISOString().slice(0, 10)],
    ['a date-time without a time zone', () => new Date(now() + 10 * DAY_MS).toISOString().slice(0, 19)],
    ['an impossible calendar date', () => `${new Date(now() + 40 * DAY_MS).getUTCFullYear() + 1}-02-30T00:00:00Z`],
    ['a number', () => now() + 10 * DAY_MS],
    ['null', () => null],
  ])('refuses PATCH expiresAt that is %s with 400 and details.field "expiresAt", leaving expiresAt and userConsentedAt unchanged', async (_what, value) => {
    const before = await connection();
    expect(before.expiresAt).not.toBeNull();
    const res = await call(ts.baseUrl, 'PATCH', `/users/${userId}/connections/${connectionId}`, { token, json: { expiresAt: value() } });
    expect(res.status).toBe(400);
    const body = res.body as ErrorBody;
    expect(body.code).toEqual(expect.any(String));
    expect(body.message).toContain('expiresAt');
    expect((body.details as { field?: unknown } | undefined)?.field).toBe('expiresAt');
    const after = await connection();
    expect(after.expiresAt).toBe(before.expiresAt);
    expect(after.userConsentedAt).toBe(before.userConsentedAt);
  });

  it('refuses PATCH without expiresAt with 400 naming it', async () => {
    const before = await connection();
    const res = await call(ts.baseUrl, 'PATCH', `/users/${userId}/connections/${connectionId}`, { token, json: {} });
    expect(res.status).toBe(400);
    expect((res.body as ErrorBody).message).toContain('expiresAt');
    expect(await connection()).toEqual(before);
  });

  it('accepts PATCH expiresAt within 90 days (the refusals above were about the value)', async () => {
    const expiresAt = new Date(now() + 30 * DAY_MS).toISOString();
    const res = await call(ts.baseUrl, 'PATCH', `/users/${userId}/connections/${connectionId}`, { token, json: { expiresAt } });
    expect(res.status).toBe(204);
    expect((await connection()).expiresAt).toBe(expiresAt);
  });

  it.each(['limit=0', 'limit=5000', 'limit=1001', 'offset=-1', 'limit=abc', 'offset=abc', 'limit=1.5'])('answers 400 to GET /users?%s and to the same on a sync list', async (qs) => {
    const users = await call(ts.baseUrl, 'GET', `/users?${qs}`, { token });
    expect(users.status).toBe(400);
    const param = qs.split('=')[0] ?? '';
    expect((users.body as ErrorBody).message).toContain(param);
    const syncs = await call(ts.baseUrl, 'GET', `/users/${userId}/connections/${connectionId}/syncs?${qs}`, { token });
    expect(syncs.status).toBe(400);
    expect((syncs.body as ErrorBody).message).toContain(param);
  });

  it('accepts the extremes of limit and offset (limit=1, limit=1000, offset=0)', async () => {
    for (const qs of ['limit=1', 'limit=1000', 'offset=0', 'limit=1&offset=50']) {
      expect((await call(ts.baseUrl, 'GET', `/users?${qs}`, { token })).status, qs).toBe(200);
    }
  });

  const weirdIds = ['%00', 'a%00b', 'x'.repeat(5000), 'zzzzzzzzzzzzzzzzzzzzzzzz', 'A'.repeat(24), '..%2F..%2Fetc', "'%20or%201=1--", '%E2%9C%93', '-1', '%25'];

  it.each(weirdIds.map((id) => [id.length > 40 ? `${id.slice(0, 10)}… (${id.length} chars)` : id, id]))(
    'answers 404 (never 500) for an unknown user, connection or sync id such as %s',
    async (_label, id) => {
      const userToken = await accessToken(ts.baseUrl, client, ALL_API_SCOPES, userId);
      const expiresAt = { expiresAt: new Date(now() + 10 * DAY_MS).toISOString() };
      const calls: [string, string, string, unknown?][] = [
        ['GET user', 'GET', `/users/${id}`],
        ['DELETE user', 'DELETE', `/users/${id}`],
        ['GET connections of unknown user', 'GET', `/users/${id}/connections`],
        ['GET connection', 'GET', `/users/${userId}/connections/${id}`],
        ['PATCH connection', 'PATCH', `/users/${userId}/connections/${id}`, expiresAt],
        ['DELETE connection', 'DELETE', `/users/${userId}/connection/${id}`],
        ['GET syncs', 'GET', `/users/${userId}/connections/${id}/syncs`],
        ['GET sync', 'GET', `/users/${userId}/syncs/${id}`],
      ];
      for (const [what, method, path, json] of calls) {
        const res = await call(ts.baseUrl, method, path, { token, ...(json !== undefined ? { json } : {}) });
        // Soft: report every endpoint that gets it wrong, not only the first.
        expect.soft(res.status, what).toBe(404);
        expect.soft(res.body, what).toMatchObject({ code: 'not_found', message: expect.any(String) });
      }
      const sync = await call(ts.baseUrl, 'POST', `/v2.0/sync/${id}`, { token: userToken, json: {} });
      expect.soft(sync.status, 'POST sync').toBe(404);
      expect.soft(sync.body, 'POST sync').toMatchObject({ code: 'not_found' });
    },
  );

  it('answers a path with broken percent-encoding with 400 in the { code, message } error shape', async () => {
    for (const path of ['/users/%E0%A4%A', '/users/%', `/users/${'%'}zz/connections`]) {
      const res = await call(ts.baseUrl, 'GET', path, { token });
      expect(res.status, path).toBe(400);
      const body = res.body as ErrorBody;
      expect(body.code, path).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(body.message, path).toEqual(expect.any(String));
      expect(Object.keys(body).sort(), path).toEqual(expect.arrayContaining(['code', 'message']));
      expect(body, path).not.toHaveProperty('statusCode');
    }
  });

  it('still holds the user, its connection and its sync after all the bad input', async () => {
    expect((await call(ts.baseUrl, 'GET', `/users/${userId}`, { token })).status).toBe(200);
    expect((await connection()).id).toBe(connectionId);
    expect((await call(ts.baseUrl, 'GET', `/users/${userId}/syncs/${syncId}`, { token })).status).toBe(200);
  });

  it('answers 401 to client registration without the admin token (or with a wrong one) and registers nothing', async () => {
    const before = await clientCount();
    const body = JSON.stringify({ client_name: 'intruder', redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'client_secret_basic' });
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-admin-token-0123456789' }, { authorization: `Bearer ${ADMIN_TOKEN}x` }];
    for (const headers of attempts) {
      const res = await fetch(`${ts.baseUrl}/oidc/reg`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      const json = (await res.json()) as Record<string, unknown>;
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(json, JSON.stringify(headers)).not.toHaveProperty('client_id');
      expect(json.error, JSON.stringify(headers)).toEqual(expect.any(String));
    }
    expect(await clientCount()).toBe(before);
  });

  it('answers 400 to client registration with a bad body and registers nothing', async () => {
    const before = await clientCount();
    const bodies: Record<string, unknown>[] = [
      { client_name: 'bad', redirect_uris: REDIRECT_URI },
      { client_name: 'bad', redirect_uris: ['not a url'] },
      { client_name: 'bad', redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'magic' },
      { client_name: 'bad', redirect_uris: [REDIRECT_URI], grant_types: 'client_credentials' },
      { client_name: 'a\u0000b', redirect_uris: [REDIRECT_URI] },
    ];
    for (const body of bodies) {
      const res = await fetch(`${ts.baseUrl}/oidc/reg`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as Record<string, unknown>;
      expect.soft(res.status, JSON.stringify(body)).toBe(400);
      expect.soft(json, JSON.stringify(body)).not.toHaveProperty('client_id');
      expect.soft(json.error, JSON.stringify(body)).toEqual(expect.any(String));
    }
    const malformed = await fetch(`${ts.baseUrl}/oidc/reg`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: '{"redirect_uris": [',
    });
    expect(malformed.status).toBe(400);
    expect(await clientCount()).toBe(before);

    // The same request done right registers exactly one client.
    await apiClient(ts.baseUrl);
    expect(await clientCount()).toBe(before + 1);
  });

  it('answers 404 to a 32-hex catalog id used as a user id', async () => {
    const res = await call(ts.baseUrl, 'GET', `/users/${MODELO_ID}`, { token });
    expect(res.status).toBe(404);
  });
});
