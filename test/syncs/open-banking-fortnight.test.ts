/**
 * Two weeks of scheduled syncs of Modelo (an Open Banking test bank) connections, one for each
 * sandbox behaviour, with the sandbox clock moved 3 hours at a time and the scheduler run after each
 * move. After every step the connections are read through the official client; the tests then check
 * what a user of the API would check, step by step and day by day.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { officialClient, type MoneyhubClient } from '../helpers/moneyhub.ts';
import {
  apiTransactionCount, clockNow, connectAs, connections, DAY_MS, expectWellFormed, history, HOUR_MS, inLast24h, maxInAnyWindow,
  MODELO_ID, ms, newUser, scheduled, storedTransactions, tick, type Conn, type Sync,
} from './scenario.ts';

const USERNAMES = ['user_ok', 'user_partial', 'user_flaky', 'user_mfa', 'user_revoked', 'user_stale'] as const;
type Username = (typeof USERNAMES)[number];
const DAYS = 14;
const STEP_HOURS = 3;

interface Observation {
  /** Domain time right after the connections were read. */
  at: number;
  conns: Map<Username, Conn>;
  /** Syncs the scheduler ran in this step. */
  ran: Sync[];
}

interface DayCount {
  day: number;
  stored: { rows: number; distinct: number };
  api: number;
}

describe('a fortnight of scheduled syncs of Open Banking connections, one per sandbox behaviour', () => {
  let ts: TestServer;
  let mh: MoneyhubClient;
  let userId: string;
  const ids = new Map<Username, string>();
  const observations: Observation[] = [];
  const counts = new Map<Username, DayCount[]>();
  const histories = new Map<Username, Sync[]>();

  const id = (u: Username): string => ids.get(u) ?? '';
  const hist = (u: Username): Sync[] => histories.get(u) ?? [];
  /** Syncs of `u` that had started by `at`. */
  const syncsBy = (u: Username, at: number): Sync[] => hist(u).filter((s) => ms(s.createdAt) <= at);
  const conn = (o: Observation, u: Username): Conn => {
    const c = o.conns.get(u);
    if (c === undefined) throw new Error(`no ${u} connection observed`);
    return c;
  };

  async function observe(ran: Sync[]): Promise<void> {
    const list = await connections(mh, userId);
    const at = await clockNow(ts);
    const conns = new Map<Username, Conn>();
    for (const u of USERNAMES) {
      const c = list.find((x) => x.id === id(u));
      if (c === undefined) throw new Error(`${u} connection missing`);
      conns.set(u, c);
    }
    observations.push({ at, conns, ran });
  }

  async function countTransactions(day: number): Promise<void> {
    for (const u of USERNAMES) {
      const c = observations.at(-1)?.conns.get(u);
      const row = { day, stored: await storedTransactions(ts, id(u)), api: await apiTransactionCount(mh, userId, c?.accountIds ?? []) };
      counts.set(u, [...(counts.get(u) ?? []), row]);
    }
  }

  beforeAll(async () => {
    ts = await startTestServer();
    ({ mh } = await officialClient(ts.baseUrl, 'client_secret_basic'));
    userId = await newUser(mh, 'fortnight');
    for (const u of USERNAMES) ids.set(u, (await connectAs(mh, userId, MODELO_ID, u)).id);
    await observe([]);
    await countTransactions(0);
    for (let step = 1; step <= (DAYS * 24) / STEP_HOURS; step += 1) {
      const { ran } = await tick(ts, `PT${STEP_HOURS}H`);
      await observe(ran);
      if ((step * STEP_HOURS) % 24 === 0) await countTransactions((step * STEP_HOURS) / 24);
    }
    for (const u of USERNAMES) histories.set(u, await history(mh, userId, id(u)));
  }, 180_000);
  afterAll(async () => ts?.stop());

  it('syncs a healthy connection exactly 4 times in every 24 hours, about 6 hours apart, and keeps it ok', () => {
    const auto = scheduled(hist('user_ok')).reverse();
    expect(auto).toHaveLength(DAYS * 4);
    for (let i = 1; i < auto.length; i += 1) {
      expect(ms(auto[i]?.createdAt) - ms(auto[i - 1]?.createdAt)).toBeGreaterThanOrEqual(6 * HOUR_MS);
    }
    const connectedAt = ms(conn(observations[0] as Observation, 'user_ok').connectedOn);
    for (const o of observations) {
      const c = conn(o, 'user_ok');
      if (o.at >= connectedAt + DAY_MS) expect(inLast24h(syncsBy('user_ok', o.at).filter((s) => s.method === 'UPDATE'), o.at)).toBe(4);
      expect(c).toMatchObject({ status: 'ok', error: null, extendedStatus: null });
      expect(c.remediation.action).toBe('none');
      expect(c.remediation.reason).toContain('Modelo Open Banking Mock');
    }
  });

  it('never syncs any connection without the user more than 4 times in a rolling 24 hours, whatever its behaviour', () => {
    for (const u of USERNAMES) {
      const unattended = scheduled(hist(u));
      expect(unattended.length, u).toBeGreaterThan(0);
      expect(maxInAnyWindow(unattended), u).toBeLessThanOrEqual(4);
      for (const o of observations) expect(inLast24h(unattended, o.at), `${u} at ${new Date(o.at).toISOString()}`).toBeLessThanOrEqual(4);
    }
  });

  it('shows in syncBudget how many unattended syncs are left in the rolling 24 hours and when the oldest frees up', () => {
    for (const u of USERNAMES) {
      for (const o of observations) {
        const window = scheduled(syncsBy(u, o.at)).filter((s) => ms(s.createdAt) > o.at - DAY_MS);
        const budget = conn(o, u).syncBudget;
        const label = `${u} at ${new Date(o.at).toISOString()}`;
        expect(budget.remaining, label).toBe(4 - window.length);
        const oldest = Math.min(...window.map((s) => ms(s.createdAt)));
        if (window.length === 0) expect(budget.resetsAt, label).toBeNull();
        else expect(ms(budget.resetsAt), label).toBe(oldest + DAY_MS);
      }
    }
  });

  it('always shows the next scheduled sync, in the next 6 hours, and runs it when it comes', () => {
    for (const u of USERNAMES) {
      for (let i = 1; i < observations.length; i += 1) {
        const o = observations[i] as Observation;
        const next = ms(conn(o, u).nextSyncAt);
        const label = `${u} at ${new Date(o.at).toISOString()}`;
        expect(next, label).toBeGreaterThan(o.at - 60_000);
        expect(next, label).toBeLessThanOrEqual(o.at + 6 * HOUR_MS);
        const later = observations[i + 1];
        if (later === undefined) continue;
        // The first step at or after nextSyncAt runs the sync; no step before it does.
        const ranNext = later.ran.some((s) => s.connectionId === id(u));
        const due = next <= later.at;
        expect(ranNext, `${label}: next ${new Date(next).toISOString()}, next step ${new Date(later.at).toISOString()}`).toBe(due);
      }
    }
  });

  it('moves lastUpdated only when a sync retrieved data, never backwards and never past now', () => {
    for (const u of USERNAMES) {
      for (let i = 1; i < observations.length; i += 1) {
        const before = conn(observations[i - 1] as Observation, u);
        const o = observations[i] as Observation;
        const after = conn(o, u);
        const label = `${u} at ${new Date(o.at).toISOString()}`;
        const lu = ms(after.lastUpdated);
        expect(lu, label).toBeGreaterThanOrEqual(ms(before.lastUpdated));
        expect(lu, label).toBeLessThanOrEqual(o.at);
        const mine = o.ran.filter((s) => s.connectionId === id(u));
        const retrieved = mine.some((s) => s.fetchStatus === 'success' || s.fetchStatus === 'partial');
        if (!retrieved) expect(after.lastUpdated, `${label}: no data was retrieved`).toBe(before.lastUpdated);
        if (retrieved && u !== 'user_stale') {
          // The bank's as-of time for what it served: within the sync, not later than its retrieval.
          const s = mine[0] as Sync;
          expect(lu, label).toBeGreaterThanOrEqual(ms(s.createdAt));
          expect(lu, label).toBeLessThanOrEqual(ms(s.fetchedAt));
        }
      }
    }
  });

  it('keeps lastUpdated of user_stale at the connection day, turns it resync after 48 hours and asks for reauth 48 hours after that', () => {
    const first = conn(observations[0] as Observation, 'user_stale');
    const lu = ms(first.lastUpdated);
    expect(lu).toBeLessThanOrEqual(ms(first.connectedOn));
    expect(ms(first.connectedOn) - lu).toBeLessThan(60_000);
    const margin = 10 * 60_000;
    let sawSync = false;
    let sawReauth = false;
    for (const o of observations) {
      const c = conn(o, 'user_stale');
      const label = `at ${new Date(o.at).toISOString()}`;
      expect(c.lastUpdated, label).toBe(first.lastUpdated);
      const age = o.at - lu;
      if (age < 48 * HOUR_MS - margin) {
        expect(c, label).toMatchObject({ status: 'ok', error: null });
      } else if (age > 48 * HOUR_MS + margin) {
        expect(c, label).toMatchObject({ status: 'error', error: 'resync', extendedStatus: null });
        expect(c.remediation.reason, label).toContain('Modelo Open Banking Mock');
        if (age < 96 * HOUR_MS - margin) {
          expect(c.remediation.action, label).toBe('sync');
          sawSync = true;
        } else if (age > 96 * HOUR_MS + margin) {
          expect(c.remediation.action, label).toBe('reauth');
          sawReauth = true;
        }
      }
    }
    expect(sawSync && sawReauth).toBe(true);
    // Its syncs did not fail: they brought data dated the day of connection.
    expect(scheduled(hist('user_stale')).every((s) => s.fetchStatus === 'success')).toBe(true);
  });

  it('shows user_partial as sync_partial from its first sync: wait, then sync after 3 partial syncs in a row, while lastUpdated still moves', () => {
    for (const o of observations) {
      const c = conn(o, 'user_partial');
      const label = `at ${new Date(o.at).toISOString()}`;
      expect(c, label).toMatchObject({ status: 'error', error: 'sync_partial' });
      const partials = syncsBy('user_partial', o.at).length;
      expect(c.remediation.action, label).toBe(partials >= 3 ? 'sync' : 'wait');
    }
    const last = conn(observations.at(-1) as Observation, 'user_partial');
    const first = conn(observations[0] as Observation, 'user_partial');
    expect(ms(last.lastUpdated)).toBeGreaterThan(ms(first.lastUpdated) + (DAYS - 1) * DAY_MS);
  });

  it('alternates user_flaky between sync_error (wait until nextSyncAt) and ok, back to ok at the first good sync', () => {
    const auto = scheduled(hist('user_flaky')).reverse();
    auto.forEach((s, i) => expect(s.fetchStatus, `scheduled sync ${i + 1}`).toBe(i % 2 === 0 ? 'error' : 'success'));
    let errors = 0;
    let recoveries = 0;
    for (let i = 1; i < observations.length; i += 1) {
      const o = observations[i] as Observation;
      const c = conn(o, 'user_flaky');
      const lastSync = syncsBy('user_flaky', o.at)[0] as Sync;
      const label = `at ${new Date(o.at).toISOString()}`;
      if (lastSync.fetchStatus === 'error') {
        errors += 1;
        expect(c, label).toMatchObject({ status: 'error', error: 'sync_error' });
        expect(c.remediation.action, label).toBe('wait');
        expect(c.remediation.retryAfter, label).toBe(c.nextSyncAt);
      } else {
        expect(c, label).toMatchObject({ status: 'ok', error: null });
        expect(c.remediation.action, label).toBe('none');
        if (conn(observations[i - 1] as Observation, 'user_flaky').status === 'error') recoveries += 1;
      }
    }
    expect(errors).toBeGreaterThan(10);
    expect(recoveries).toBe(DAYS * 2);
  });

  it('shows user_mfa as mfa_required with remediation reauth from its first unattended sync on, even when its data is old', () => {
    const first = conn(observations[0] as Observation, 'user_mfa');
    expect(first.status).toBe('ok');
    for (const o of observations.slice(1)) {
      const c = conn(o, 'user_mfa');
      const label = `at ${new Date(o.at).toISOString()}`;
      if (scheduled(syncsBy('user_mfa', o.at)).length === 0) {
        expect(c.status, label).toBe('ok');
        continue;
      }
      expect(c, label).toMatchObject({ status: 'error', error: 'mfa_required', lastUpdated: first.lastUpdated });
      expect(c.remediation.action, label).toBe('reauth');
    }
    expect(scheduled(hist('user_mfa')).every((s) => s.fetchStatus === 'mfa-required')).toBe(true);
  });

  it('shows user_revoked as credentials_error with remediation reauth from its first scheduled sync on, and keeps its data', () => {
    for (const o of observations.slice(1)) {
      const c = conn(o, 'user_revoked');
      const label = `at ${new Date(o.at).toISOString()}`;
      if (scheduled(syncsBy('user_revoked', o.at)).length === 0) {
        expect(c.status, label).toBe('ok');
        continue;
      }
      expect(c, label).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: null });
      expect(c.remediation.action, label).toBe('reauth');
      expect(c.accountIds).toHaveLength(2);
    }
    const days = counts.get('user_revoked') ?? [];
    expect(days.every((d) => d.api === days[0]?.api && d.api > 0)).toBe(true);
  });

  it('records every sync newest first: ADD at connection, then UPDATE auto-updates with the fetch status each behaviour produces', () => {
    const expected: Record<Username, (i: number) => string> = {
      user_ok: () => 'success',
      user_partial: () => 'partial',
      user_flaky: (i) => (i % 2 === 0 ? 'error' : 'success'),
      user_mfa: () => 'mfa-required',
      user_revoked: () => 'credentials-error',
      user_stale: () => 'success',
    };
    for (const u of USERNAMES) {
      const h = hist(u);
      for (let i = 1; i < h.length; i += 1) expect(ms(h[i - 1]?.createdAt), u).toBeGreaterThanOrEqual(ms(h[i]?.createdAt));
      const add = h.at(-1) as Sync;
      expect(add.method, u).toBe('ADD');
      expect(add.fetchStatus, u).toBe(u === 'user_partial' ? 'partial' : 'success');
      expect(h.slice(0, -1).every((s) => s.method === 'UPDATE' && s.action === 'auto-update'), u).toBe(true);
      const conn0 = conn(observations.at(-1) as Observation, u);
      h.forEach((s) => expectWellFormed(s, id(u)));
      scheduled(h).reverse().forEach((s, i) => expect(s.fetchStatus, `${u} scheduled sync ${i + 1}`).toBe(expected[u](i)));
      for (const s of h.filter((x) => x.fetchStatus === 'success' || x.fetchStatus === 'partial')) {
        expect(s.accounts.map((a) => a.accountId).sort(), u).toEqual([...conn0.accountIds].sort());
        expect(s.accounts.every((a) => a.providerId === MODELO_ID), u).toBe(true);
      }
      if (u === 'user_partial') expect(h.every((s) => /transactions/i.test(s.errorDetail ?? ''))).toBe(true);
    }
  });

  it('pages the sync history with limit and offset, newest first, with next and prev links', async () => {
    const full = hist('user_ok');
    expect(full.length).toBeGreaterThan(50);
    const paged: Sync[] = [];
    for (let offset = 0; offset < full.length; offset += 10) {
      const page = (await mh.getConnectionSyncs({ userId, connectionId: id('user_ok'), params: { limit: 10, offset } })) as unknown as {
        data: Sync[]; links: { next?: string; prev?: string }; meta: { total?: number };
      };
      expect(page.data.length).toBe(Math.min(10, full.length - offset));
      expect(page.links.next !== undefined).toBe(offset + 10 < full.length);
      expect(page.links.prev !== undefined).toBe(offset > 0);
      if (page.meta.total !== undefined) expect(page.meta.total).toBe(full.length);
      paged.push(...page.data);
    }
    expect(paged.map((s) => s.id)).toEqual(full.map((s) => s.id));
    const beyond = await mh.getConnectionSyncs({ userId, connectionId: id('user_ok'), params: { limit: 10, offset: full.length } });
    expect(beyond.data).toEqual([]);
  });

  it('never duplicates a transaction however often it re-syncs, and never loses stored data on a failed or partial sync', () => {
    for (const u of USERNAMES) {
      const days = counts.get(u) ?? [];
      expect(days).toHaveLength(DAYS + 1);
      for (let i = 0; i < days.length; i += 1) {
        const d = days[i] as DayCount;
        expect(d.stored.rows, `${u} day ${d.day}: a stored transaction is duplicated`).toBe(d.stored.distinct);
        expect(d.api, `${u} day ${d.day}: the API lists what is stored`).toBe(d.stored.rows);
        if (i > 0) expect(d.api, `${u} day ${d.day}: transactions were lost`).toBeGreaterThanOrEqual((days[i - 1] as DayCount).api);
      }
      const added = hist(u).reduce((n, s) => n + s.counts.transactionsAdded, 0);
      expect(added, `${u}: the syncs' transactionsAdded add up to what is stored`).toBe(days.at(-1)?.api);
    }
    // New transactions arrive over time for connections whose syncs retrieve data...
    for (const u of ['user_ok', 'user_flaky', 'user_partial'] as const) {
      const days = counts.get(u) ?? [];
      expect(days.at(-1)?.api ?? 0, u).toBeGreaterThan((days[0]?.api ?? 0) + DAYS / 2);
    }
    // ...and the history from the connect sync stays for those whose later syncs fail.
    for (const u of ['user_mfa', 'user_revoked'] as const) expect((counts.get(u) ?? [])[0]?.api ?? 0, u).toBeGreaterThan(0);
  });
});
