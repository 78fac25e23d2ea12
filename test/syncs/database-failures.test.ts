/**
 * A database failure during a sync is Mooring's, never the provider's (issue 7 §2): the
 * connection's status and error stay as they were, the provider's health does not count it, and
 * the sync runs again.
 *
 * The failure is the one a real deployment sees: while a sync fetches from a slow bank (user_slow),
 * the test holds a lock on the connection's row that storing the result needs, and terminates the
 * database backend of the server's connection as soon as it waits on that lock
 * (`pg_terminate_backend`, as an administrator's restart or a failover does).
 *
 * PostgreSQL only: PGlite is one in-process connection, with no backend to terminate and no second
 * session to hold a lock.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient, connectBank, MODELO_ID, type ApiClient } from '../helpers/api.ts';
import { sandbox } from '../helpers/moneyhub.ts';
import { waitUntil } from '../helpers/processes.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { testDatabaseUrl } from '../helpers/db.ts';

interface ConnectionJson {
  id: string;
  syncBudget: unknown;
  status: string;
  error: string | null;
  lastUpdated: string;
  remediation: { action: string };
}

interface SyncJson {
  id: string;
  fetchStatus: string | null;
  state: string;
}

describe.skipIf(testDatabaseUrl() === null)('database failures during a sync (PostgreSQL: needs TEST_DATABASE_URL)', () => {
  let ts: TestServer;
  let a: ApiClient;
  let userId: string;
  let connectionId: string;
  let locker: pg.Client;

  const connection = async (): Promise<ConnectionJson> => {
    const { data } = await a.mh.getUserConnections({ userId });
    const c = (data as unknown as ConnectionJson[]).find((x) => x.id === connectionId);
    if (c === undefined) throw new Error('the connection is gone');
    return c;
  };
  const history = async (): Promise<SyncJson[]> =>
    ((await a.mh.getConnectionSyncs({ userId, connectionId })) as unknown as { data: SyncJson[] }).data;
  const modeloHealth = async (): Promise<string | undefined> =>
    (await a.mh.listConnections()).find((c) => c.id === MODELO_ID)?.status.sync;
  const activeSync = async () =>
    (await ts.testDb.db.query<{ id: string; state: string; error_detail: string | null; fetch_status: string | null }>(
      `select id::text as id, state, error_detail, fetch_status from syncs where connection_id = $1 and state <> 'done'`, [connectionId],
    )).rows[0];

  /** Server backends waiting on the test's lock. */
  const blockedBackends = async (): Promise<number[]> => {
    // pg_stat_activity is a snapshot per transaction, and the locker's transaction stays open.
    await locker.query('select pg_stat_clear_snapshot()');
    const r = await locker.query<{ pid: number }>('select pid from pg_stat_activity where $1 = any(pg_blocking_pids(pid))', [(locker as unknown as { processID: number }).processID]);
    return r.rows.map((x) => x.pid);
  };

  /** Starts a requested sync of the slow bank and holds the connection's row once it runs. */
  async function syncWhileLocked(): Promise<{ pending: Promise<{ data: { status: string } }> }> {
    const pending = a.mh.syncUserConnection({ userId, connectionId });
    await waitUntil('the requested sync to be running', 20_000, async () => (await activeSync())?.state === 'running', { intervalMs: 20 });
    await locker.query('begin');
    await locker.query('select 1 from connections where id = $1 for no key update', [connectionId]);
    return { pending };
  }

  beforeAll(async () => {
    ts = await startTestServer();
    const url = ts.testDb.url;
    if (url === null) throw new Error('expected a PostgreSQL test database');
    locker = new pg.Client({ connectionString: url });
    await locker.connect();
    a = await apiClient(ts.baseUrl);
    userId = (await a.mh.registerUser({ clientUserId: 'db-failures' })).userId;
    connectionId = await connectBank(a, userId);
    const slow = await sandbox(ts.baseUrl, 'POST', `/sandbox/connections/${connectionId}/behaviour`, { username: 'user_slow' });
    expect(slow.status).toBeLessThan(300);
  }, 60_000);

  afterAll(async () => {
    await locker?.end();
    await ts?.stop();
  });

  it('retries storing a sync whose database connection was terminated, and records only the success', async () => {
    const before = await connection();
    const { pending } = await syncWhileLocked();
    const [victim] = await waitUntil('the server to wait on the lock while storing the sync', 30_000, async () => {
      const b = await blockedBackends();
      return b.length > 0 ? b : undefined;
    }, { intervalMs: 20 });
    await locker.query('select pg_terminate_backend($1)', [victim]);
    await locker.query('commit');

    expect((await pending).data.status).toBe('ok');
    const after = await connection();
    expect(after).toMatchObject({ status: 'ok', error: null, remediation: { action: 'none' } });
    expect(Date.parse(after.lastUpdated)).toBeGreaterThanOrEqual(Date.parse(before.lastUpdated));
    expect((await history()).map((s) => s.fetchStatus)).toEqual(['success', 'success']);
    expect(await modeloHealth()).toBe('AVAILABLE');
  }, 90_000);

  it('when the database keeps failing, ends the attempt as Mooring\'s own failure: the connection and the provider\'s health are untouched, and the sync runs again', async () => {
    const before = await connection();
    const { pending } = await syncWhileLocked();
    let terminated = 0;
    // Terminate every backend that waits on the lock until the server gives the sync back.
    const released = await waitUntil('the server to give the sync back to the queue', 60_000, async () => {
      for (const pid of await blockedBackends()) {
        await locker.query('select pg_terminate_backend($1)', [pid]);
        terminated += 1;
      }
      const s = await activeSync();
      return s?.state === 'queued' ? s : undefined;
    }, { intervalMs: 20 });
    expect(terminated).toBeGreaterThan(1);
    expect(released.fetch_status).toBeNull();
    expect(released.error_detail).toMatch(/internal failure, not the provider's/);

    // Nothing about the failed attempt counts against the connection or the provider.
    // (The request itself took one of the unattended syncs of the day: the bank was called.)
    const { syncBudget: _budgetAfter, ...untouched } = await connection();
    const { syncBudget: _budgetBefore, ...asBefore } = before;
    expect(untouched).toEqual(asBefore);
    expect((await history()).filter((s) => s.state === 'done').map((s) => s.fetchStatus)).toEqual(['success', 'success']);
    expect(await modeloHealth()).toBe('AVAILABLE');

    // The database is back: the same sync runs again and the requester gets its real outcome.
    await locker.query('commit');
    expect((await pending).data.status).toBe('ok');
    const syncs = await history();
    expect(syncs.map((s) => [s.state, s.fetchStatus])).toEqual([['done', 'success'], ['done', 'success'], ['done', 'success']]);
    expect(await connection()).toMatchObject({ status: 'ok', error: null });
    expect(await modeloHealth()).toBe('AVAILABLE');
  }, 120_000);
});
