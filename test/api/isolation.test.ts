/**
 * Isolation between API clients (SPEC section 2): another client's users, connections and syncs
 * answer 404 exactly as ids that do not exist, and nothing another client sends changes them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.ts';
import { domainNow } from '../helpers/time.ts';
import { accessToken, ALL_API_SCOPES, apiClient, call, connectBank, DAY_MS, MODELO_ID, type ApiClient, type Res } from '../helpers/api.ts';

const NO_USER = 'a'.repeat(24);
const NO_CONNECTION = `${MODELO_ID}:00000000-0000-4000-8000-000000000000`;
const NO_SYNC = '00000000-0000-4000-8000-000000000000';

interface Snapshot {
  user: unknown;
  connections: unknown;
  syncs: unknown;
  sync: unknown;
}

describe('isolation between API clients', () => {
  let ts: TestServer;
  /** The server's domain time (tests start it at a fixed instant). */
  let now: () => number;
  let a: ApiClient;
  let b: ApiClient;
  let userA: string;
  let userB: string;
  let connectionA: string;
  let syncA: string;
  let tokenB: string;
  let tokenBForUserB: string;

  /** A's view of everything it owns, through its own token. */
  async function snapshotOfA(): Promise<Snapshot> {
    const token = await accessToken(ts.baseUrl, a, ALL_API_SCOPES);
    const get = async (path: string): Promise<unknown> => {
      const res = await call(ts.baseUrl, 'GET', path, { token });
      expect(res.status, path).toBe(200);
      return res.body;
    };
    const user = (await get(`/users/${userA}`)) as Record<string, unknown>;
    // lastAccessed may legitimately move on reads; every other field must hold still.
    const { lastAccessed: _ignored, ...stable } = user;
    return {
      user: stable,
      connections: await get(`/users/${userA}/connections`),
      syncs: await get(`/users/${userA}/connections/${connectionA}/syncs`),
      sync: await get(`/users/${userA}/syncs/${syncA}`),
    };
  }

  /** Asserts `res` is the same 404 as `control` (the same request shape with an id that does not exist). */
  function sameAsMissing(what: string, res: Res, control: Res): void {
    expect(control.status, `${what} (control)`).toBe(404);
    expect(res.status, what).toBe(404);
    expect(res.body, what).toEqual(control.body);
    expect(res.body, what).toMatchObject({ code: expect.any(String), message: expect.any(String) });
  }

  beforeAll(async () => {
    ts = await startTestServer();
    now = await domainNow(ts.baseUrl, ADMIN_TOKEN);
    a = await apiClient(ts.baseUrl);
    b = await apiClient(ts.baseUrl);
    userA = (await a.mh.registerUser({ clientUserId: 'shared-name' })).userId;
    connectionA = await connectBank(a, userA);
    const syncs = await a.mh.getConnectionSyncs({ userId: userA, connectionId: connectionA });
    syncA = syncs.data[0]?.id ?? '';
    expect(syncA).not.toBe('');
    userB = (await b.mh.registerUser({ clientUserId: 'shared-name' })).userId;
    tokenB = await accessToken(ts.baseUrl, b, ALL_API_SCOPES);
    tokenBForUserB = await accessToken(ts.baseUrl, b, ALL_API_SCOPES, userB);
  });
  afterAll(async () => ts.stop());

  it("answers 404 to every read of another client's user, connection or sync, exactly as for ids that do not exist", async () => {
    const before = await snapshotOfA();
    const cases: [string, string, string][] = [
      ['GET user', `/users/${userA}`, `/users/${NO_USER}`],
      ['GET connections', `/users/${userA}/connections`, `/users/${NO_USER}/connections`],
      ['GET connection', `/users/${userA}/connections/${connectionA}`, `/users/${NO_USER}/connections/${connectionA}`],
      ['GET syncs', `/users/${userA}/connections/${connectionA}/syncs`, `/users/${NO_USER}/connections/${connectionA}/syncs`],
      ['GET sync', `/users/${userA}/syncs/${syncA}`, `/users/${NO_USER}/syncs/${syncA}`],
      // B's own user with A's connection or sync: as if the connection or sync did not exist.
      ['GET connection via own user', `/users/${userB}/connections/${connectionA}`, `/users/${userB}/connections/${NO_CONNECTION}`],
      ['GET syncs via own user', `/users/${userB}/connections/${connectionA}/syncs`, `/users/${userB}/connections/${NO_CONNECTION}/syncs`],
      ['GET sync via own user', `/users/${userB}/syncs/${syncA}`, `/users/${userB}/syncs/${NO_SYNC}`],
    ];
    for (const [what, path, missing] of cases) {
      sameAsMissing(what, await call(ts.baseUrl, 'GET', path, { token: tokenB }), await call(ts.baseUrl, 'GET', missing, { token: tokenB }));
    }
    expect(await snapshotOfA()).toEqual(before);
  });

  it("answers 404 to every change B attempts on A's user and connection, and A's data is unchanged afterwards", async () => {
    const before = await snapshotOfA();
    const expiresAt = { expiresAt: new Date(now() + 10 * DAY_MS).toISOString() };
    const cases: [string, string, string, unknown?][] = [
      ['PATCH connection', 'PATCH', `/users/${userA}/connections/${connectionA}`, expiresAt],
      ['PATCH connection via own user', 'PATCH', `/users/${userB}/connections/${connectionA}`, expiresAt],
      ['DELETE connection (singular path)', 'DELETE', `/users/${userA}/connection/${connectionA}`],
      ['DELETE connection (plural path)', 'DELETE', `/users/${userA}/connections/${connectionA}`],
      ['DELETE connection via own user', 'DELETE', `/users/${userB}/connection/${connectionA}`],
      ['DELETE user', 'DELETE', `/users/${userA}`],
    ];
    const missingOf = (path: string): string => path.replace(userA, NO_USER).replace(connectionA, NO_CONNECTION);
    for (const [what, method, path, json] of cases) {
      const opts = { token: tokenB, ...(json !== undefined ? { json } : {}) };
      sameAsMissing(what, await call(ts.baseUrl, method, path, opts), await call(ts.baseUrl, method, missingOf(path), opts));
    }

    const sync = await call(ts.baseUrl, 'POST', `/v2.0/sync/${connectionA}`, { token: tokenBForUserB, json: {} });
    const syncMissing = await call(ts.baseUrl, 'POST', `/v2.0/sync/${NO_CONNECTION}`, { token: tokenBForUserB, json: {} });
    sameAsMissing('POST /v2.0/sync with own user', sync, syncMissing);

    const after = await snapshotOfA();
    expect(after).toEqual(before);
    // Concretely: A's connection is still there with its consent and its single sync.
    expect((after.connections as { data: { id: string; expiresAt: string }[] }).data.map((c) => c.id)).toEqual([connectionA]);
    expect((after.syncs as { data: unknown[] }).data).toHaveLength(1);
  });

  it("lists only the client's own users in GET /users", async () => {
    const extraA = (await a.mh.registerUser({ clientUserId: 'a-extra' })).userId;
    const listB = (await call(ts.baseUrl, 'GET', '/users', { token: tokenB })).body as { data: { userId: string; clientId: string }[]; meta: { total?: number } };
    expect(listB.data.map((u) => u.userId)).toEqual([userB]);
    expect(listB.data.every((u) => u.clientId === b.clientId)).toBe(true);
    if (listB.meta.total !== undefined) expect(listB.meta.total).toBe(1);

    const tokenA = await accessToken(ts.baseUrl, a, 'user:read');
    const listA = (await call(ts.baseUrl, 'GET', '/users', { token: tokenA })).body as { data: { userId: string }[] };
    expect(listA.data.map((u) => u.userId).sort()).toEqual([userA, extraA].sort());
  });

  it("lets the owner do what the other client was refused (the 404s were about ownership)", async () => {
    const tokenA = await accessToken(ts.baseUrl, a, ALL_API_SCOPES, userA);
    const sync = await call(ts.baseUrl, 'POST', `/v2.0/sync/${connectionA}`, { token: tokenA, json: {} });
    expect(sync.status).toBe(200);
    const patch = await call(ts.baseUrl, 'PATCH', `/users/${userA}/connections/${connectionA}`, { token: tokenA, json: { expiresAt: new Date(now() + 10 * DAY_MS).toISOString() } });
    expect(patch.status).toBe(204);
    const del = await call(ts.baseUrl, 'DELETE', `/users/${userA}/connection/${connectionA}`, { token: tokenA });
    expect(del.status).toBe(204);
    const delUser = await call(ts.baseUrl, 'DELETE', `/users/${userA}`, { token: tokenA });
    expect(delUser.status).toBe(204);
    expect((await call(ts.baseUrl, 'GET', `/users/${userA}`, { token: tokenA })).status).toBe(404);
  });
});
