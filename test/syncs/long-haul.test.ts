/**
 * The long haul, on one server whose sandbox clock both parts move forward in turn.
 *
 * 90-day consent: three months of daily steps of the clock (the scheduler run after each) for
 * connections whose consent lasts 90 days: Modelo (tppConsent: reconsent or PATCH renews it),
 * Nationwide (a login at the bank renews it) and Zoopla (a monthly property valuation, tppConsent).
 * Checks the monthly valuation cadence, the day consent lapses, that nothing syncs until it is
 * renewed, and renewal. The clock starts on the 20th of a month at noon, so the valuation dates fall
 * the same way in every run.
 *
 * Nightly: a week of syncs of Aviva (a credential-based "legacy" provider) connections, the clock
 * moved 3 hours at a time: a healthy one, one whose provider wants a one-time code whenever the user
 * is absent, and one whose data never moves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { officialClient, runJourney, type MoneyhubClient } from '../helpers/moneyhub.ts';
import {
  advanceTo, apiTransactionCount, clockNow, connectAs, connection, connections, DAY_MS, expectWellFormed, history, HOUR_MS, maxInAnyWindow,
  MODELO_ID, ms, newUser, providerId, rejection, scheduled, storedTransactions, tick, type Conn, type Sync,
} from './scenario.ts';

let ts: TestServer;
let mh: MoneyhubClient;

beforeAll(async () => {
  ts = await startTestServer();
  ({ mh } = await officialClient(ts.baseUrl, 'client_secret_basic'));
});
afterAll(async () => ts?.stop());

const NAMES = ['modelo', 'modelo2', 'nationwide', 'zoopla'] as const;
type Name = (typeof NAMES)[number];
const CONSENT_MS = 90 * DAY_MS;

interface ConsentObservation {
  at: number;
  conns: Map<Name, Conn>;
  ran: Sync[];
}

describe('90-day consent: monthly valuations, expiry and renewal', () => {
  let userId: string;
  let expiresAt: number;
  let expiredAt = 0;
  const ids = new Map<Name, string>();
  const observations: ConsentObservation[] = [];
  const histories = new Map<Name, Sync[]>();
  const id = (n: Name): string => ids.get(n) ?? '';
  const hist = (n: Name): Sync[] => histories.get(n) ?? [];
  const conn = (o: ConsentObservation, n: Name): Conn => {
    const c = o.conns.get(n);
    if (c === undefined) throw new Error(`no ${n} connection observed`);
    return c;
  };
  const before = (): ConsentObservation[] => observations.filter((o) => o.at < expiresAt);
  const after = (): ConsentObservation[] => observations.filter((o) => o.at >= expiresAt);

  async function observe(ran: Sync[]): Promise<void> {
    const list = await connections(mh, userId);
    const at = await clockNow(ts);
    const conns = new Map<Name, Conn>();
    for (const n of NAMES) {
      const c = list.find((x) => x.id === id(n));
      if (c === undefined) throw new Error(`${n} connection missing`);
      conns.set(n, c);
    }
    observations.push({ at, conns, ran });
  }

  beforeAll(async () => {
    const now = new Date(await clockNow(ts));
    await advanceTo(ts, Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 20, 12));
    userId = await newUser(mh, 'ninety-days');
    ids.set('modelo', (await connectAs(mh, userId, MODELO_ID, 'user_ok')).id);
    ids.set('modelo2', (await connectAs(mh, userId, MODELO_ID, 'user_ok')).id);
    ids.set('nationwide', (await connectAs(mh, userId, await providerId(mh, 'Nationwide Open Banking'), 'user_ok')).id);
    ids.set('zoopla', (await connectAs(mh, userId, await providerId(mh, 'Zoopla'), 'user_ok')).id);
    await observe([]);
    expiresAt = Math.min(...NAMES.map((n) => ms(conn(observations[0] as ConsentObservation, n).expiresAt)));
    // Day by day until consent has lapsed, then two more days.
    for (let at = 0; at < expiresAt + 2 * DAY_MS; ) {
      const step = await tick(ts, 'P1D');
      at = step.now;
      await observe(step.ran);
    }
    for (const n of NAMES) histories.set(n, await history(mh, userId, id(n)));
  }, 120_000);
  // Its connections leave the schedule once the tests are done with them.
  afterAll(async () => mh?.deleteUser({ userId }));

  it('sets expiresAt 90 days after consent and keeps Open Banking connections ok every day until then', () => {
    const first = observations[0] as ConsentObservation;
    for (const n of NAMES) {
      const c = conn(first, n);
      expect(c.tppConsent, n).toBe(n !== 'nationwide');
      expect(ms(c.expiresAt), n).toBe(ms(c.connectedOn) + CONSENT_MS);
      expect(c.userConsentedAt, n).toBe(c.connectedOn);
    }
    expect(before().length).toBeGreaterThanOrEqual(89);
    for (const o of before()) {
      for (const n of ['modelo', 'modelo2', 'nationwide'] as const) {
        const c = conn(o, n);
        const label = `${n} at ${new Date(o.at).toISOString()}`;
        expect(c, label).toMatchObject({ status: 'ok', error: null, extendedStatus: null, expiresAt: conn(first, n).expiresAt });
        expect(ms(c.lastUpdated), label).toBeLessThanOrEqual(o.at);
      }
    }
  });

  it('values a Zoopla property once a calendar month, early in the month after each new valuation, never two within 28 days', () => {
    const connectedAt = ms(conn(observations[0] as ConsentObservation, 'zoopla').connectedOn);
    const monthly = scheduled(hist('zoopla')).reverse();
    // 90 days from the connection span three month starts.
    expect(monthly.length).toBeGreaterThanOrEqual(2);
    expect(monthly.length).toBeLessThanOrEqual(3);
    expect(ms(monthly[0]?.createdAt) - connectedAt).toBeLessThanOrEqual(32 * DAY_MS);
    monthly.forEach((s) => expect(new Date(ms(s.createdAt)).getUTCDate(), s.createdAt).toBeLessThanOrEqual(4));
    for (let i = 1; i < monthly.length; i += 1) expect(ms(monthly[i]?.createdAt) - ms(monthly[i - 1]?.createdAt)).toBeGreaterThanOrEqual(28 * DAY_MS);
    expect(maxInAnyWindow(monthly, 28 * DAY_MS)).toBe(1);
    monthly.forEach((s) => expect(s.fetchStatus).toBe('success'));
    hist('zoopla').forEach((s) => expectWellFormed(s, id('zoopla')));
    for (const o of before()) {
      const c = conn(o, 'zoopla');
      const label = new Date(o.at).toISOString();
      expect(ms(c.nextSyncAt), label).toBeGreaterThan(o.at);
      expect(ms(c.nextSyncAt), label).toBeLessThanOrEqual(o.at + 32 * DAY_MS);
      // The valuation's own date: never later than now, never backwards.
      expect(ms(c.lastUpdated), label).toBeLessThanOrEqual(o.at);
    }
    for (let i = 1; i < observations.length; i += 1) {
      expect(ms(conn(observations[i] as ConsentObservation, 'zoopla').lastUpdated)).toBeGreaterThanOrEqual(ms(conn(observations[i - 1] as ConsentObservation, 'zoopla').lastUpdated));
    }
  });

  it('keeps a healthy Zoopla connection ok every day between its monthly valuations', () => {
    const stale = before()
      .filter((o) => conn(o, 'zoopla').status !== 'ok')
      .map((o) => `${new Date(o.at).toISOString().slice(0, 10)} ${conn(o, 'zoopla').error} (lastUpdated ${conn(o, 'zoopla').lastUpdated})`);
    expect(stale, 'days on which a healthy, monthly-synced Zoopla connection was not ok').toEqual([]);
  });

  it('marks consent lapsed at 90 days: credentials_error, extendedStatus expired, reconsent if tppConsent else reauth, nothing scheduled', () => {
    expect(after().length).toBeGreaterThanOrEqual(2);
    for (const o of after()) {
      for (const n of NAMES) {
        const c = conn(o, n);
        const label = `${n} at ${new Date(o.at).toISOString()}`;
        expect(c, label).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired', nextSyncAt: null });
        expect(c.remediation.action, label).toBe(n === 'nationwide' ? 'reauth' : 'reconsent');
        expect(c.remediation.reason, label).toContain(c.name);
        // Data retrieved before stays, as fresh as it was.
        expect(c.lastUpdated, label).toBe(conn(before().at(-1) as ConsentObservation, n).lastUpdated);
        expect(c.accountIds.length, label).toBeGreaterThan(0);
      }
    }
    // No sync ran once consent had lapsed.
    for (const n of NAMES) {
      expect(hist(n).filter((s) => ms(s.createdAt) >= expiresAt), n).toEqual([]);
    }
  });

  it('answers error to requested syncs of an expired connection and records nothing; its data stays readable', async () => {
    for (const n of NAMES) {
      const c = await connection(mh, userId, id(n));
      expect(c.extendedStatus, n).toBe('expired');
      const unattended = await mh.syncUserConnection({ userId, connectionId: id(n) }).catch((e: unknown) => e);
      const attended = await mh.syncUserConnection({ userId, connectionId: id(n), customerIpAddress: '192.0.2.10' });
      expect(attended.data.status, n).toBe('error');
      expect((unattended as { data?: { status?: string } }).data?.status, `${n}: ${JSON.stringify(unattended)}`).toBe('error');
      expect(await history(mh, userId, id(n)), n).toHaveLength(hist(n).length);
      const stored = await storedTransactions(ts, id(n));
      expect(stored.rows, n).toBe(stored.distinct);
      expect(await apiTransactionCount(mh, userId, c.accountIds), n).toBe(stored.rows);
    }
    expiredAt = await clockNow(ts);
  });

  it('refuses a PATCH renewal further than 90 days ahead and changes nothing', async () => {
    const now = await clockNow(ts);
    const err = await rejection(mh.updateUserConnection({ userId, connectionId: id('modelo'), expiresAt: new Date(now + CONSENT_MS + DAY_MS).toISOString() }));
    expect(err.response?.statusCode).toBe(400);
    expect((await connection(mh, userId, id('modelo'))).extendedStatus).toBe('expired');
  });

  it('renews Modelo consent with a PATCH: back on the schedule, and ok after its next sync', async () => {
    const now = await clockNow(ts);
    const renewTo = new Date(now + 60 * DAY_MS).toISOString();
    expect(await mh.updateUserConnection({ userId, connectionId: id('modelo'), expiresAt: renewTo })).toBe(204);
    const renewed = await connection(mh, userId, id('modelo'));
    expect(renewed.expiresAt).toBe(renewTo);
    expect(renewed.extendedStatus).toBeNull();
    expect(renewed.error).not.toBe('credentials_error');
    expect(Math.abs(ms(renewed.userConsentedAt) - now)).toBeLessThan(60_000);
    expect(renewed.nextSyncAt).not.toBeNull();
    expect(ms(renewed.nextSyncAt)).toBeLessThanOrEqual(now + 6 * HOUR_MS + 60_000);
    await tick(ts, 'PT6H');
    await tick(ts, 'PT1M');
    const syncs = await history(mh, userId, id('modelo'));
    expect(syncs.length).toBeGreaterThan(hist('modelo').length);
    expect(syncs[0], JSON.stringify(syncs[0])).toMatchObject({ action: 'auto-update', fetchStatus: 'success' });
    const c = await connection(mh, userId, id('modelo'));
    expect(c).toMatchObject({ status: 'ok', error: null, extendedStatus: null });
    expect(c.remediation.action).toBe('none');
    expect(ms(c.lastUpdated)).toBeGreaterThan(expiredAt);
  });

  it('renews Modelo consent through a reconsent journey (no bank login): ok after its next sync', async () => {
    const now = await clockNow(ts);
    const renewTo = new Date(now + 90 * DAY_MS - HOUR_MS).toISOString();
    const url = await mh.getReconsentAuthorizeUrlForCreatedUser({ userId, connectionId: id('modelo2'), expiresAt: renewTo, state: 's-reconsent', nonce: 'n-reconsent' });
    const callback = await runJourney(url, 'user_ok');
    expect(callback.get('error')).toBeNull();
    const renewed = await connection(mh, userId, id('modelo2'));
    expect(renewed).toMatchObject({ expiresAt: renewTo, extendedStatus: null });
    expect(Math.abs(ms(renewed.userConsentedAt) - now)).toBeLessThan(60_000);
    expect(renewed.nextSyncAt).not.toBeNull();
    // Whenever its next scheduled sync runs, it succeeds.
    await advanceTo(ts, ms(renewed.nextSyncAt) + 60_000);
    await tick(ts, 'PT1M');
    const syncs = await history(mh, userId, id('modelo2'));
    expect(syncs.length).toBeGreaterThan(hist('modelo2').length);
    expect(syncs[0], JSON.stringify(syncs[0])).toMatchObject({ action: 'auto-update', fetchStatus: 'success' });
    expect(await connection(mh, userId, id('modelo2'))).toMatchObject({ status: 'ok', error: null, extendedStatus: null });
  });

  it('renews Zoopla consent with a PATCH: a sync is possible again and brings it back to ok', async () => {
    const now = await clockNow(ts);
    const renewTo = new Date(now + 90 * DAY_MS - HOUR_MS).toISOString();
    expect(await mh.updateUserConnection({ userId, connectionId: id('zoopla'), expiresAt: renewTo })).toBe(204);
    const renewed = await connection(mh, userId, id('zoopla'));
    expect(renewed).toMatchObject({ expiresAt: renewTo, extendedStatus: null });
    expect(renewed.nextSyncAt).not.toBeNull();
    // The user is present (they just renewed): the unattended budget was used by this month's valuation.
    const r = await mh.syncUserConnection({ userId, connectionId: id('zoopla'), customerIpAddress: '203.0.113.5' });
    expect(r.data.status).toBe('ok');
    const c = await connection(mh, userId, id('zoopla'));
    expect(c).toMatchObject({ status: 'ok', error: null, extendedStatus: null });
    expect(ms(c.lastUpdated)).toBeLessThanOrEqual(await clockNow(ts));
  });

  it('renews Nationwide (no tppConsent) through a reauth journey at the bank: new expiry, ok after its sync', async () => {
    const url = await mh.getReauthAuthorizeUrlForCreatedUser({ userId, connectionId: id('nationwide'), state: 's-reauth', nonce: 'n-reauth' });
    const callback = await runJourney(url, 'user_ok');
    expect(callback.get('error')).toBeNull();
    const now = await clockNow(ts);
    const c = await connection(mh, userId, id('nationwide'));
    expect(c).toMatchObject({ status: 'ok', error: null, extendedStatus: null });
    expect(Math.abs(ms(c.expiresAt) - (now + CONSENT_MS))).toBeLessThan(60_000);
    expect(ms(c.lastUpdated)).toBeGreaterThan(expiredAt);
    expect(c.nextSyncAt).not.toBeNull();
    const stored = await storedTransactions(ts, id('nationwide'));
    expect(stored.rows).toBe(stored.distinct);
  });
});

const USERNAMES = ['user_ok', 'user_mfa', 'user_stale'] as const;
type Username = (typeof USERNAMES)[number];
const NIGHTS = 7;

interface NightObservation {
  at: number;
  conns: Map<Username, Conn>;
  ran: Sync[];
}

describe('a week of nightly syncs of Aviva (legacy) connections', () => {
  let userId: string;
  let aviva: string;
  const ids = new Map<Username, string>();
  const observations: NightObservation[] = [];
  const histories = new Map<Username, Sync[]>();
  const id = (u: Username): string => ids.get(u) ?? '';
  const hist = (u: Username): Sync[] => histories.get(u) ?? [];
  const conn = (o: NightObservation, u: Username): Conn => {
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

  beforeAll(async () => {
    aviva = await providerId(mh, 'Aviva');
    userId = await newUser(mh, 'nightly');
    for (const u of USERNAMES) ids.set(u, (await connectAs(mh, userId, aviva, u)).id);
    await observe([]);
    for (let step = 1; step <= NIGHTS * 8; step += 1) await observe((await tick(ts, 'PT3H')).ran);
    for (const u of USERNAMES) histories.set(u, await history(mh, userId, id(u)));
  }, 120_000);

  it('syncs a healthy Aviva connection once a night, between 02:00 and 05:00 UTC, never twice in 24 hours, and keeps it ok', () => {
    const connectedAt = ms(conn(observations[0] as NightObservation, 'user_ok').connectedOn);
    for (const u of USERNAMES) {
      const nightly = scheduled(hist(u)).reverse();
      expect(nightly.length, u).toBeGreaterThanOrEqual(NIGHTS - 1);
      expect(nightly.length, u).toBeLessThanOrEqual(NIGHTS);
      for (const s of nightly) expect(new Date(ms(s.createdAt)).getUTCHours(), `${u} sync at ${s.createdAt}`).toBeGreaterThanOrEqual(2);
      for (const s of nightly) expect(new Date(ms(s.createdAt)).getUTCHours(), `${u} sync at ${s.createdAt}`).toBeLessThan(5);
      expect(maxInAnyWindow(nightly), u).toBe(1);
      for (let i = 1; i < nightly.length; i += 1) expect(ms(nightly[i]?.createdAt) - ms(nightly[i - 1]?.createdAt), u).toBeGreaterThan(20 * HOUR_MS);
      // The first night after connecting is not skipped (unless the connection was made within a few hours of it).
      expect(ms(nightly[0]?.createdAt) - connectedAt, u).toBeLessThanOrEqual(DAY_MS + 9 * HOUR_MS);
    }
    for (const o of observations) {
      const c = conn(o, 'user_ok');
      expect(c, new Date(o.at).toISOString()).toMatchObject({ status: 'ok', error: null, extendedStatus: null, expiresAt: null });
      expect(c.remediation.action).toBe('none');
    }
    expect(scheduled(hist('user_ok')).every((s) => s.fetchStatus === 'success')).toBe(true);
  });

  it('shows a budget of one unattended sync per 24 hours for legacy connections, and the next night as nextSyncAt', () => {
    for (const o of observations.slice(1)) {
      const c = conn(o, 'user_ok');
      const label = new Date(o.at).toISOString();
      const recent = scheduled(hist('user_ok')).filter((s) => ms(s.createdAt) <= o.at && ms(s.createdAt) > o.at - DAY_MS);
      expect(c.syncBudget.remaining, label).toBe(1 - recent.length);
      if (recent.length === 0) expect(c.syncBudget.resetsAt, label).toBeNull();
      else expect(ms(c.syncBudget.resetsAt), label).toBe(ms(recent[0]?.createdAt) + DAY_MS);
      // The next night, and not before the budget allows another unattended sync.
      const next = new Date(ms(c.nextSyncAt));
      expect(next.getUTCHours(), `${label}: next ${c.nextSyncAt}`).toBeGreaterThanOrEqual(2);
      expect(next.getUTCHours(), `${label}: next ${c.nextSyncAt}`).toBeLessThan(5);
      if (c.syncBudget.remaining === 0) expect(ms(c.nextSyncAt), label).toBeGreaterThanOrEqual(ms(c.syncBudget.resetsAt));
      expect(ms(c.nextSyncAt), label).toBeGreaterThan(o.at);
      expect(ms(c.nextSyncAt), label).toBeLessThanOrEqual(o.at + DAY_MS + 6 * HOUR_MS);
    }
  });

  it('moves lastUpdated of a healthy Aviva connection each night, never backwards and never past now', () => {
    for (let i = 1; i < observations.length; i += 1) {
      const o = observations[i] as NightObservation;
      const before = conn(observations[i - 1] as NightObservation, 'user_ok');
      const after = conn(o, 'user_ok');
      expect(ms(after.lastUpdated)).toBeGreaterThanOrEqual(ms(before.lastUpdated));
      expect(ms(after.lastUpdated)).toBeLessThanOrEqual(o.at);
      const synced = o.ran.some((s) => s.connectionId === id('user_ok'));
      if (synced) expect(ms(after.lastUpdated)).toBeGreaterThan(ms(before.lastUpdated));
      else expect(after.lastUpdated).toBe(before.lastUpdated);
    }
  });

  it('shows an Aviva user_mfa connection as mfa_required with remediation refresh after its first night, and a refresh journey repairs it', async () => {
    const first = conn(observations[0] as NightObservation, 'user_mfa');
    expect(first.status).toBe('ok');
    expect(scheduled(hist('user_mfa')).every((s) => s.fetchStatus === 'mfa-required')).toBe(true);
    hist('user_mfa').forEach((s) => expectWellFormed(s, id('user_mfa')));
    for (const o of observations.slice(1)) {
      const c = conn(o, 'user_mfa');
      const label = new Date(o.at).toISOString();
      if (scheduled(hist('user_mfa')).every((s) => ms(s.createdAt) > o.at)) {
        expect(c.status, label).toBe('ok');
        continue;
      }
      expect(c, label).toMatchObject({ status: 'error', error: 'mfa_required', lastUpdated: first.lastUpdated });
      expect(c.remediation.action, label).toBe('refresh');
      expect(c.remediation.reason, label).toContain('Aviva');
    }
    const transactions = await apiTransactionCount(mh, userId, first.accountIds);
    expect(transactions).toBeGreaterThan(0);

    const url = await mh.getRefreshAuthorizeUrlForCreatedUser({ userId, connectionId: id('user_mfa'), state: 's-refresh', nonce: 'n-refresh' });
    const callback = await runJourney(url, 'user_mfa');
    expect(callback.get('error')).toBeNull();
    const repaired = await connection(mh, userId, id('user_mfa'));
    expect(repaired).toMatchObject({ status: 'ok', error: null });
    expect(repaired.remediation.action).toBe('none');
    expect(ms(repaired.lastUpdated)).toBeGreaterThan(ms(first.lastUpdated) + (NIGHTS - 1) * DAY_MS);
    const stored = await storedTransactions(ts, id('user_mfa'));
    expect(stored.rows).toBe(stored.distinct);
    expect(stored.rows).toBeGreaterThan(transactions);
    expect(await apiTransactionCount(mh, userId, repaired.accountIds)).toBe(stored.rows);
  });

  it('keeps lastUpdated of an Aviva user_stale connection at the connection day: resync after 72 hours, refresh 48 hours after that', () => {
    const first = conn(observations[0] as NightObservation, 'user_stale');
    const lu = ms(first.lastUpdated);
    expect(ms(first.connectedOn) - lu).toBeLessThan(60_000);
    const margin = 10 * 60_000;
    let saw = { ok: false, sync: false, refresh: false };
    for (const o of observations) {
      const c = conn(o, 'user_stale');
      const label = new Date(o.at).toISOString();
      expect(c.lastUpdated, label).toBe(first.lastUpdated);
      const age = o.at - lu;
      if (age < 72 * HOUR_MS - margin) {
        expect(c, label).toMatchObject({ status: 'ok', error: null });
        saw = { ...saw, ok: true };
      } else if (age > 72 * HOUR_MS + margin && age < 120 * HOUR_MS - margin) {
        expect(c, label).toMatchObject({ status: 'error', error: 'resync' });
        expect(c.remediation.action, label).toBe('sync');
        saw = { ...saw, sync: true };
      } else if (age > 120 * HOUR_MS + margin) {
        expect(c, label).toMatchObject({ status: 'error', error: 'resync' });
        expect(c.remediation.action, label).toBe('refresh');
        saw = { ...saw, refresh: true };
      }
    }
    expect(saw).toEqual({ ok: true, sync: true, refresh: true });
    expect(scheduled(hist('user_stale')).every((s) => s.fetchStatus === 'success')).toBe(true);
  });

  it('never duplicates the transactions of a legacy connection across nightly syncs', async () => {
    for (const u of ['user_ok', 'user_stale'] as const) {
      const stored = await storedTransactions(ts, id(u));
      expect(stored.rows, u).toBe(stored.distinct);
      expect(hist(u).reduce((n, s) => n + s.counts.transactionsAdded, 0), u).toBe(stored.rows);
      const c = conn(observations.at(-1) as NightObservation, u);
      expect(await apiTransactionCount(mh, userId, c.accountIds), u).toBe(stored.rows);
    }
  });
});
