/**
 * Shared pieces of the sync scenario tests: the sandbox clock and scheduler, connections and sync
 * histories as the official client reads them, and small checks over them. Everything goes over
 * HTTP except counting stored transaction rows (the duplicate check).
 */
import { expect } from 'vitest';
import type { TestServer } from '../helpers/server.ts';
import { connect, sandbox, type MoneyhubClient } from '../helpers/moneyhub.ts';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
export const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';

/** A connection as GET /users/:id/connections shows it, with Mooring's additive fields. */
export interface Conn {
  id: string;
  name: string;
  type: string;
  connectedOn: string;
  lastUpdated: string | null;
  expiresAt: string | null;
  accountIds: string[];
  status: 'ok' | 'error' | 'never';
  error: string | null;
  userConsentedAt: string;
  tppConsent: boolean;
  extendedStatus: string | null;
  lastAttemptAt: string | null;
  nextSyncAt: string | null;
  syncBudget: { remaining: number; resetsAt: string | null };
  remediation: { action: string; reason: string; retryAfter?: string };
}

export interface Sync {
  id: string;
  connectionId: string;
  action: 'auto-update' | 'client-update';
  method: 'ADD' | 'UPDATE';
  fetchStatus: string | null;
  createdAt: string;
  fetchedAt: string | null;
  accounts: { providerId: string; accountId: string }[];
  state: string;
  finishedAt: string | null;
  counts: { accounts: number; transactionsAdded: number; transactionsUpdated: number };
  errorDetail: string | null;
}

export { rejection, type HttpError } from '../helpers/moneyhub.ts';

export const ms = (iso: string | null | undefined): number => {
  if (iso === null || iso === undefined) throw new Error('expected a time, got null');
  const t = Date.parse(iso);
  if (Number.isNaN(t)) throw new Error(`not a time: ${iso}`);
  return t;
};

/** Mooring's domain clock now. */
export async function clockNow(ts: TestServer): Promise<number> {
  const r = await sandbox(ts.baseUrl, 'GET', '/sandbox/clock');
  expect(r.status).toBe(200);
  return ms(r.json.now as string);
}

export async function advance(ts: TestServer, duration: string): Promise<number> {
  const r = await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: duration });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return ms(r.json.now as string);
}

/** POST /sandbox/scheduler/run: every due sync, run to completion. */
export async function runScheduler(ts: TestServer): Promise<Sync[]> {
  const r = await sandbox(ts.baseUrl, 'POST', '/sandbox/scheduler/run');
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.syncs as Sync[];
}

/** Moves the clock forward by `duration`, then runs the scheduler. */
export async function tick(ts: TestServer, duration: string): Promise<{ now: number; ran: Sync[] }> {
  const now = await advance(ts, duration);
  return { now, ran: await runScheduler(ts) };
}

/** Moves the clock to `target` (domain time, in the future) in one step. */
export async function advanceTo(ts: TestServer, target: number): Promise<number> {
  const now = await clockNow(ts);
  const seconds = Math.ceil((target - now) / 1000);
  if (seconds <= 0) return now;
  return advance(ts, `PT${seconds}S`);
}

export async function connections(mh: MoneyhubClient, userId: string): Promise<Conn[]> {
  return (await mh.getUserConnections({ userId })).data as unknown as Conn[];
}

export async function connection(mh: MoneyhubClient, userId: string, connectionId: string): Promise<Conn> {
  const c = (await connections(mh, userId)).find((x) => x.id === connectionId);
  if (c === undefined) throw new Error(`connection ${connectionId} is not listed for user ${userId}`);
  return c;
}

/** The whole sync history of a connection, newest first, as one page. */
export async function history(mh: MoneyhubClient, userId: string, connectionId: string): Promise<Sync[]> {
  const r = await mh.getConnectionSyncs({ userId, connectionId, params: { limit: 1000 } });
  return r.data as unknown as Sync[];
}

/** Scheduled (unattended) syncs: every auto-update after the connect journey's ADD. */
export const scheduled = (syncs: Sync[]): Sync[] => syncs.filter((s) => s.action === 'auto-update' && s.method === 'UPDATE');

/** How many of `syncs` started within the 24 hours up to `at` (the rolling window of the budget). */
export const inLast24h = (syncs: Sync[], at: number, windowMs = DAY_MS): number =>
  syncs.filter((s) => ms(s.createdAt) > at - windowMs && ms(s.createdAt) <= at).length;

/** The most syncs that ever started within any window of `windowMs`. */
export function maxInAnyWindow(syncs: Sync[], windowMs = DAY_MS): number {
  const times = syncs.map((s) => ms(s.createdAt)).sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; j < times.length; j += 1) {
    while ((times[j] as number) - (times[i] as number) >= windowMs) i += 1;
    best = Math.max(best, j - i + 1);
  }
  return best;
}

export async function newUser(mh: MoneyhubClient, clientUserId: string): Promise<string> {
  return (await mh.registerUser({ clientUserId })).userId;
}

/** Connects through the browser journey and answers the connection as listed right after. */
export async function connectAs(mh: MoneyhubClient, userId: string, bankId: string, username: string): Promise<Conn> {
  const { connectionId } = await connect(mh, userId, bankId, username);
  return connection(mh, userId, connectionId);
}

/** The catalog id of a provider, by its exact name. */
export async function providerId(mh: MoneyhubClient, name: string): Promise<string> {
  const all = (await mh.listConnections()) as unknown as { id: string; name: string }[];
  const p = all.find((c) => c.name === name);
  if (p === undefined) throw new Error(`no ${name} in the catalog`);
  return p.id;
}

/** Stored transaction rows of a connection's accounts, and how many distinct provider ids they have. */
export async function storedTransactions(ts: TestServer, connectionId: string): Promise<{ rows: number; distinct: number }> {
  const r = await ts.testDb.db.query<{ rows: string; distinct: string }>(
    `select count(*)::text as rows, count(distinct (t.account_id, t.provider_transaction_id))::text as distinct
       from transactions t join accounts a on a.id = t.account_id where a.connection_id = $1`,
    [connectionId],
  );
  return { rows: Number(r.rows[0]?.rows ?? 0), distinct: Number(r.rows[0]?.distinct ?? 0) };
}

/** How many transactions the resource server lists for these accounts (meta.total per account). */
export async function apiTransactionCount(mh: MoneyhubClient, userId: string, accountIds: string[]): Promise<number> {
  let total = 0;
  for (const accountId of accountIds) {
    const r = (await mh.getTransactions({ userId, params: { accountId, limit: 1 } })) as unknown as { meta: { total: number } };
    total += r.meta.total;
  }
  return total;
}

/** Asserts the fields every finished sync must have, whatever its outcome. */
export function expectWellFormed(s: Sync, connectionId: string): void {
  expect(s.connectionId).toBe(connectionId);
  expect(s.state).toBe('done');
  expect(s.finishedAt).not.toBeNull();
  expect(ms(s.finishedAt)).toBeGreaterThanOrEqual(ms(s.createdAt));
  if (s.fetchStatus === 'success') {
    expect(s.errorDetail).toBeNull();
  } else {
    expect(typeof s.errorDetail, `a ${s.fetchStatus} sync explains itself`).toBe('string');
    expect((s.errorDetail ?? '').length).toBeGreaterThan(0);
  }
  if (s.fetchStatus === 'success' || s.fetchStatus === 'partial') {
    expect(s.fetchedAt).not.toBeNull();
    expect(s.counts.accounts).toBeGreaterThan(0);
  } else {
    // A sync that retrieved nothing stored nothing.
    expect(s.counts).toEqual({ accounts: 0, transactionsAdded: 0, transactionsUpdated: 0 });
  }
}
