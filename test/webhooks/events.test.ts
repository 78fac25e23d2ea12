/**
 * Which events Mooring logs, exactly once per real change: syncCompleted per sync, newTransactions
 * only when a sync added transactions, connectionStatusChanged / connectionRepaired when status or
 * error changes (never when a sync leaves them as they were), connectionExpired at consent expiry,
 * reauthReminder from 5 days before expiry at most every 48 h, and refreshReminder for a legacy
 * connection not updated for 2 days, at most every 48 h. Time is driven with the sandbox clock and
 * POST /sandbox/scheduler/run (due syncs, then the time-driven event sweep, then deliveries).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { accessToken, call, connectBank, DAY_MS, MODELO_ID, type ApiClient } from '../helpers/api.ts';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';
import {
  advanceClock, allEvents, attendedSync, byCreated, clockNow, ofConnection, runScheduler, setBehaviour, setWebhook, webhookClient, type EventJson,
} from '../helpers/webhooks.ts';

interface SyncJson {
  id: string;
  fetchStatus: string;
  counts: { transactionsAdded: number };
}
interface TxJson {
  id: string;
  accountId: string;
}

describe('webhook events: exactly once per real change', () => {
  let ts: TestServer;
  let client: ApiClient;
  let receiver: Receiver;
  let catalog: { id: string; name: string }[];
  const idOf = (name: string): string => {
    const found = catalog.find((c) => c.name === name);
    if (found === undefined) throw new Error(`no provider ${name}`);
    return found.id;
  };

  beforeAll(async () => {
    ts = await startTestServer();
    client = await webhookClient(ts.baseUrl);
    receiver = await startReceiver();
    await setWebhook(ts.baseUrl, client.clientId, receiver.url);
    catalog = (await client.mh.listConnections()) as typeof catalog;
  });
  afterAll(async () => {
    await receiver?.close();
    await ts?.stop();
  });

  async function syncsOf(userId: string, connectionId: string): Promise<SyncJson[]> {
    const token = await accessToken(ts.baseUrl, client, 'user:read');
    const res = await call(ts.baseUrl, 'GET', `/users/${userId}/connections/${encodeURIComponent(connectionId)}/syncs?limit=1000`, { token });
    expect(res.status).toBe(200);
    return (res.body as { data: SyncJson[] }).data;
  }

  async function transactionsOf(userId: string): Promise<TxJson[]> {
    const token = await accessToken(ts.baseUrl, client, 'transactions:read:all', userId);
    const res = await call(ts.baseUrl, 'GET', '/v2.0/transactions?limit=1000', { token });
    expect(res.status).toBe(200);
    return (res.body as { data: TxJson[] }).data;
  }

  async function connectionOf(userId: string, connectionId: string): Promise<Record<string, unknown>> {
    const found = (await client.mh.getUserConnections({ userId })).data.find((c) => c.id === connectionId);
    if (found === undefined) throw new Error(`no connection ${connectionId}`);
    return found as unknown as Record<string, unknown>;
  }

  type Accounts = { id: string; transactions: string[] }[];
  const idsOfEvent = (e: EventJson): Map<string, string[]> =>
    new Map((e.payload.accounts as Accounts).map((a) => [a.id, [...a.transactions].sort()]));
  const groupByAccount = (txs: TxJson[]): Map<string, string[]> => {
    const m = new Map<string, string[]>();
    for (const t of txs) m.set(t.accountId, [...(m.get(t.accountId) ?? []), t.id]);
    for (const [k, v] of m) m.set(k, v.sort());
    return m;
  };

  it('syncCompleted per sync, newTransactions only for added transactions, status changes only on change', async () => {
    const { userId } = await client.mh.registerUser({ clientUserId: 'sync-events' });
    const connectionId = await connectBank(client, userId, MODELO_ID, 'user_ok');
    const afterConnect = await transactionsOf(userId);
    expect(afterConnect.length).toBeGreaterThan(0);

    // Nothing new: a second sync right away adds no transactions and changes nothing.
    expect(await attendedSync(client, userId, connectionId)).toBe('ok');
    let events = ofConnection(await allEvents(ts.baseUrl, client), connectionId);
    expect(events.filter((e) => e.eventType === 'syncCompleted')).toHaveLength(2);
    const firstNew = events.filter((e) => e.eventType === 'newTransactions');
    expect(firstNew).toHaveLength(1);
    expect(idsOfEvent(firstNew[0] as EventJson)).toEqual(groupByAccount(afterConnect));
    expect(events.filter((e) => e.eventType.startsWith('connection'))).toEqual([]);

    // The bank refuses: ok → error / credentials_error, once; a second refused sync changes nothing.
    await setBehaviour(ts.baseUrl, connectionId, 'user_revoked');
    expect(await attendedSync(client, userId, connectionId)).toBe('error');
    expect(await attendedSync(client, userId, connectionId)).toBe('error');
    events = ofConnection(await allEvents(ts.baseUrl, client), connectionId);
    const changed = events.filter((e) => e.eventType === 'connectionStatusChanged');
    expect(changed).toHaveLength(1);
    expect(changed[0]?.payload).toMatchObject({
      connectionId,
      previous: { status: 'ok', error: null },
      current: { status: 'error', error: 'credentials_error' },
      remediation: { action: 'reauth' },
    });
    expect(changed[0]?.userId).toBe(userId);
    expect(events.filter((e) => e.eventType === 'connectionRepaired')).toEqual([]);

    // Back to ok: one status change and one connectionRepaired.
    await setBehaviour(ts.baseUrl, connectionId, 'user_ok');
    expect(await attendedSync(client, userId, connectionId)).toBe('ok');
    expect(await attendedSync(client, userId, connectionId)).toBe('ok');

    // A day later the scheduled sync brings the day's new transactions.
    const before = new Set((await transactionsOf(userId)).map((t) => t.id));
    await advanceClock(ts.baseUrl, 'P1D');
    const run = await runScheduler(ts.baseUrl);
    expect((run.body as { ran: number }).ran).toBeGreaterThanOrEqual(1);
    const added = (await transactionsOf(userId)).filter((t) => !before.has(t.id));
    expect(added.length).toBeGreaterThan(0);

    events = ofConnection(await allEvents(ts.baseUrl, client), connectionId);
    const syncs = await syncsOf(userId, connectionId);
    const completed = events.filter((e) => e.eventType === 'syncCompleted');
    expect(completed.map((e) => e.payload.syncId).sort()).toEqual(syncs.map((s) => s.id).sort());
    for (const s of syncs) {
      const e = completed.find((c) => c.payload.syncId === s.id);
      expect(e?.payload).toMatchObject({ connectionId, fetchStatus: s.fetchStatus });
    }

    // One newTransactions per sync that added transactions, naming exactly those transactions.
    const newTx = byCreated(events.filter((e) => e.eventType === 'newTransactions'));
    const adding = syncs.filter((s) => s.counts.transactionsAdded > 0);
    expect(newTx).toHaveLength(adding.length);
    expect(newTx).toHaveLength(2);
    expect(idsOfEvent(newTx[1] as EventJson)).toEqual(groupByAccount(added));
    const allIds = newTx.flatMap((e) => (e.payload.accounts as Accounts).flatMap((a) => a.transactions));
    expect(new Set(allIds).size).toBe(allIds.length);
    expect(allIds.length).toBe(adding.reduce((n, s) => n + s.counts.transactionsAdded, 0));
    const conn = await connectionOf(userId, connectionId);
    for (const e of newTx) for (const a of e.payload.accounts as Accounts) expect(conn.accountIds).toContain(a.id);

    const changes = byCreated(events.filter((e) => e.eventType === 'connectionStatusChanged'));
    expect(changes).toHaveLength(2);
    expect(changes[1]?.payload).toMatchObject({
      previous: { status: 'error', error: 'credentials_error' },
      current: { status: 'ok', error: null },
      remediation: { action: 'none' },
    });
    const repaired = events.filter((e) => e.eventType === 'connectionRepaired');
    expect(repaired).toHaveLength(1);
    expect(repaired[0]?.payload).toMatchObject({ connectionId });
    expect(events.filter((e) => ['connectionExpired', 'reauthReminder', 'refreshReminder'].includes(e.eventType))).toEqual([]);
  });

  it('reminders and expiry: refreshReminder every 48 h for a stuck legacy connection, reauthReminder from day 85, connectionExpired at day 90', async () => {
    const { userId } = await client.mh.registerUser({ clientUserId: 'time-events' });
    const t0 = await clockNow(ts.baseUrl);
    const modelo = await connectBank(client, userId, MODELO_ID, 'user_ok');
    const nationwide = await connectBank(client, userId, idOf('Nationwide Open Banking'), 'user_ok');
    // user_mfa: the connect journey's sync (user present) succeeds, unattended nightly syncs need a code.
    const stuck = await connectBank(client, userId, idOf('Aviva'), 'user_mfa');
    const healthy = await connectBank(client, userId, idOf('Aviva'), 'user_ok');
    const dayOf = (e: EventJson): number => Math.round((Date.parse(e.createdAt) - t0) / DAY_MS);

    const step = async (days: number): Promise<void> => {
      await advanceClock(ts.baseUrl, `P${days}D`);
      await runScheduler(ts.baseUrl);
    };
    for (let d = 1; d <= 7; d += 1) await step(1);
    await step(77); // day 84
    for (let d = 85; d <= 91; d += 1) await step(1);

    const events = await allEvents(ts.baseUrl, client);
    expect(new Set(ofConnection(events, stuck).map((e) => e.userId))).toEqual(new Set([userId]));

    // The stuck legacy connection: mfa_required from its first nightly sync, once.
    const stuckChanges = ofConnection(events, stuck, 'connectionStatusChanged');
    expect(stuckChanges).toHaveLength(1);
    expect(stuckChanges[0]?.payload).toMatchObject({ previous: { status: 'ok' }, current: { status: 'error', error: 'mfa_required' }, remediation: { action: 'refresh' } });
    const refresh = byCreated(ofConnection(events, stuck, 'refreshReminder'));
    expect(refresh.map(dayOf)).toEqual([2, 4, 6, 84, 86, 88, 90]);
    for (const e of refresh) {
      expect(e.payload).toEqual({ connectionId: stuck, bankName: 'Aviva', periodSinceLastUpdateInDays: dayOf(e) });
    }
    // A legacy connection whose nightly syncs succeed gets none; neither do Open Banking ones.
    expect(ofConnection(events, healthy, 'refreshReminder')).toEqual([]);
    expect(ofConnection(events, healthy, 'connectionStatusChanged')).toEqual([]);
    expect(ofConnection(events, modelo, 'refreshReminder')).toEqual([]);
    // Legacy connections have no consent expiry: no reauth reminders.
    expect(ofConnection(events, stuck, 'reauthReminder')).toEqual([]);

    for (const [connectionId, bankName, tppConsent, action] of [
      [modelo, 'Modelo Open Banking Mock', true, 'reconsent'],
      [nationwide, 'Nationwide Open Banking', false, 'reauth'],
    ] as const) {
      const conn = await connectionOf(userId, connectionId);
      expect(conn.tppConsent).toBe(tppConsent);
      expect(conn.extendedStatus).toBe('expired');
      const reminders = byCreated(ofConnection(events, connectionId, 'reauthReminder'));
      expect(reminders.map(dayOf), bankName).toEqual([85, 87, 89]);
      expect(reminders.map((e) => e.payload)).toEqual([5, 3, 1].map((days) => ({ connectionId, bankName, timeUntilReauthorizationInDays: days, tppConsent })));

      const expired = ofConnection(events, connectionId, 'connectionExpired');
      expect(expired, bankName).toHaveLength(1);
      expect(dayOf(expired[0] as EventJson)).toBe(90);
      expect(expired[0]?.payload).toMatchObject({ connectionId, tppConsent, remediation: { action } });

      // Its only status change in 91 days of scheduled syncs is the expiry.
      const changes = ofConnection(events, connectionId, 'connectionStatusChanged');
      expect(changes, bankName).toHaveLength(1);
      expect(dayOf(changes[0] as EventJson)).toBe(90);
      expect(changes[0]?.payload).toMatchObject({
        previous: { status: 'ok', error: null, extendedStatus: null },
        current: { status: 'error', error: 'credentials_error', extendedStatus: 'expired' },
        remediation: { action },
      });
      expect(ofConnection(events, connectionId, 'connectionRepaired')).toEqual([]);

      // One syncCompleted per sync, and no sync after the expiry.
      const syncs = await syncsOf(userId, connectionId);
      expect(ofConnection(events, connectionId, 'syncCompleted').map((e) => e.payload.syncId).sort()).toEqual(syncs.map((s) => s.id).sort());
      expect(ofConnection(events, connectionId, 'syncCompleted').every((e) => dayOf(e) < 90)).toBe(true);
    }

    // Every logged event was delivered, once.
    const got = receiver.successesById();
    for (const e of events) expect(got.get(e.id)?.length, `${e.eventType} on day ${dayOf(e)}`).toBe(1);
  });
});
