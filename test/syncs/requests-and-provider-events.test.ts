/**
 * Connections when the world changes under them, and syncs a client application asks for. One
 * server; each test connects its own users, and the tests run in order sharing its sandbox clock.
 *
 * Provider events, driven through the sandbox control API: a provider retired for good, a
 * customer's behaviour switched at the bank (access revoked), and a declared provider outage.
 *
 * Requested syncs (POST /v2.0/sync/:connectionId through the official client): unattended ones
 * share the 4-a-day Open Banking budget with scheduled syncs and are refused with 429 and
 * Retry-After once it is used up; attended ones (customerIpAddress) never are; a request while a
 * sync runs joins it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { officialClient, runJourney, sandbox, type MoneyhubClient } from '../helpers/moneyhub.ts';
import {
  advance, apiTransactionCount, clockNow, connectAs, connection, DAY_MS, expectWellFormed, history, HOUR_MS, MODELO_ID, ms, newUser, providerId,
  rejection, scheduled, storedTransactions, tick, type Conn,
} from './scenario.ts';

const ATTENDED = { customerIpAddress: '203.0.113.25' };

let ts: TestServer;
let mh: MoneyhubClient;

beforeAll(async () => {
  ts = await startTestServer();
  ({ mh } = await officialClient(ts.baseUrl, 'client_secret_basic'));
});
afterAll(async () => ts?.stop());

describe('connections through provider retirement, behaviour switches and outages', () => {
  const catalogStatus = async (name: string): Promise<string | undefined> => {
    const all = (await mh.listConnections()) as unknown as { name: string; status: { sync: string } }[];
    return all.find((c) => c.name === name)?.status.sync;
  };

  it('shows a connection of a retired provider as never: nothing scheduled, requested syncs answer error and record nothing, data stays readable', async () => {
    const userId = await newUser(mh, 'retire');
    const pensionBee = await providerId(mh, 'PensionBee');
    const before = await connectAs(mh, userId, pensionBee, 'user_ok');
    expect(before.status).toBe('ok');
    const transactions = await apiTransactionCount(mh, userId, before.accountIds);
    expect(transactions).toBeGreaterThan(0);

    const retired = await sandbox(ts.baseUrl, 'POST', `/sandbox/providers/${pensionBee}/retire`);
    expect(retired.status).toBe(200);

    const c = await connection(mh, userId, before.id);
    expect(c).toMatchObject({ status: 'never', error: null, nextSyncAt: null, lastUpdated: before.lastUpdated });
    expect(c.remediation.action).toBe('reconnect');
    expect(c.remediation.reason).toContain('PensionBee');
    const listed = await catalogStatus('PensionBee');
    if (listed !== undefined) expect(listed).toBe('PERMANENTLY_UNAVAILABLE');

    for (let step = 0; step < 16; step += 1) await tick(ts, 'PT3H');
    const requested = await mh.syncUserConnection({ userId, connectionId: before.id });
    expect(requested.data.status).toBe('error');
    const attended = await mh.syncUserConnection({ userId, connectionId: before.id, customerIpAddress: '203.0.113.7' });
    expect(attended.data.status).toBe('error');

    const syncs = await history(mh, userId, before.id);
    expect(syncs).toHaveLength(1);
    expect(syncs[0]?.method).toBe('ADD');
    const after = await connection(mh, userId, before.id);
    expect(after).toMatchObject({ status: 'never', error: null, nextSyncAt: null, lastUpdated: before.lastUpdated, accountIds: before.accountIds });
    expect(await apiTransactionCount(mh, userId, before.accountIds)).toBe(transactions);
    const accounts = (await mh.getAccounts({ userId })).data as unknown as { id: string }[];
    expect(accounts.map((a) => a.id).sort()).toEqual([...before.accountIds].sort());
    await mh.deleteUser({ userId });
  });

  it('turns a healthy connection credentials_error with remediation reauth when the customer revokes access at the bank, and a reauth journey repairs it', async () => {
    const userId = await newUser(mh, 'switch');
    const start = await connectAs(mh, userId, MODELO_ID, 'user_ok');
    await tick(ts, 'PT3H');
    await tick(ts, 'PT3H');
    const healthy = await connection(mh, userId, start.id);
    expect(healthy).toMatchObject({ status: 'ok', error: null });
    expect(scheduled(await history(mh, userId, start.id)).map((s) => s.fetchStatus)).toEqual(['success']);
    const transactions = await apiTransactionCount(mh, userId, healthy.accountIds);

    const switched = await sandbox(ts.baseUrl, 'POST', `/sandbox/connections/${encodeURIComponent(start.id)}/behaviour`, { username: 'user_revoked' });
    expect(switched.status).toBe(200);
    // Nothing changes until a sync meets the refusal.
    expect(await connection(mh, userId, start.id)).toMatchObject({ status: 'ok', error: null });

    await tick(ts, 'PT3H');
    await tick(ts, 'PT3H');
    const broken = await connection(mh, userId, start.id);
    expect(broken).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: null, lastUpdated: healthy.lastUpdated });
    expect(broken.remediation.action).toBe('reauth');
    expect(broken.remediation.reason).toContain('Modelo Open Banking Mock');
    const syncs = await history(mh, userId, start.id);
    expect(syncs[0]).toMatchObject({ action: 'auto-update', method: 'UPDATE', fetchStatus: 'credentials-error' });
    expectWellFormed(syncs[0] as (typeof syncs)[number], start.id);

    // It stays so, sync after sync, and keeps its data.
    for (let step = 0; step < 4; step += 1) await tick(ts, 'PT3H');
    expect(await connection(mh, userId, start.id)).toMatchObject({ status: 'error', error: 'credentials_error', lastUpdated: healthy.lastUpdated });
    expect(await apiTransactionCount(mh, userId, healthy.accountIds)).toBe(transactions);

    // The remediation works: the user logs in at the bank again.
    const state = `s-${Math.random().toString(36).slice(2)}`;
    const url = await mh.getReauthAuthorizeUrlForCreatedUser({ userId, connectionId: start.id, state, nonce: 'n-reauth' });
    const callback = await runJourney(url, 'user_ok');
    expect(callback.get('error')).toBeNull();
    const now = await clockNow(ts);
    const repaired = await connection(mh, userId, start.id);
    expect(repaired).toMatchObject({ status: 'ok', error: null, extendedStatus: null });
    expect(repaired.remediation.action).toBe('none');
    expect(ms(repaired.lastUpdated)).toBeGreaterThan(ms(healthy.lastUpdated));
    expect(ms(repaired.userConsentedAt)).toBeGreaterThan(ms(start.userConsentedAt));
    expect(Math.abs(ms(repaired.expiresAt) - (ms(repaired.userConsentedAt) + 90 * 24 * HOUR_MS))).toBeLessThan(1000);
    expect(ms(repaired.lastUpdated)).toBeLessThanOrEqual(now);
    const after = await history(mh, userId, start.id);
    expect(after[0]?.fetchStatus).toBe('success');
    expect(after.at(-1)?.method).toBe('ADD');
    expect(after.slice(0, -1).every((s) => s.method === 'UPDATE')).toBe(true);
    const stored = await storedTransactions(ts, start.id);
    expect(stored.rows).toBe(stored.distinct);
    expect(await apiTransactionCount(mh, userId, repaired.accountIds)).toBe(stored.rows);
    await mh.deleteUser({ userId });
  });

  it('fails syncs during a declared outage without touching data, escalates after 3 failures or 48 hours, and is ok at the first sync after it ends', async () => {
    const socGen = await providerId(mh, 'Société Générale');
    const users = { a: await newUser(mh, 'outage-a'), b: await newUser(mh, 'outage-b'), c: await newUser(mh, 'outage-c') };
    const a = await connectAs(mh, users.a, socGen, 'user_ok');
    const b = await connectAs(mh, users.b, socGen, 'user_ok');
    const c = await connectAs(mh, users.c, MODELO_ID, 'user_ok');
    const txBefore = {
      a: await apiTransactionCount(mh, users.a, a.accountIds),
      b: await apiTransactionCount(mh, users.b, b.accountIds),
      c: await apiTransactionCount(mh, users.c, c.accountIds),
    };
    const start = await clockNow(ts);
    const until = new Date(start + 72 * HOUR_MS).toISOString();
    for (const id of [socGen, MODELO_ID]) {
      const r = await sandbox(ts.baseUrl, 'POST', `/sandbox/providers/${id}/outage`, { until });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
    expect(await catalogStatus('Société Générale')).toBe('TEMPORARILY_UNAVAILABLE');

    const attend = { customerIpAddress: '198.51.100.4' };
    const expectWaiting = (x: Conn, label: string): void => {
      expect(x, label).toMatchObject({ status: 'error', error: 'sync_error' });
      expect(x.remediation.action, label).toBe('wait');
      expect(x.remediation.retryAfter, label).toBe(x.nextSyncAt);
      expect(x.remediation.retryAfter, label).not.toBeUndefined();
    };
    // Three failed syncs in a row escalate at once: reauth where the bank needs a login, reconsent for tppConsent.
    for (let n = 1; n <= 3; n += 1) {
      expect((await mh.syncUserConnection({ userId: users.a, connectionId: a.id, ...attend })).data.status).toBe('error');
      expect((await mh.syncUserConnection({ userId: users.c, connectionId: c.id, ...attend })).data.status).toBe('error');
      const xa = await connection(mh, users.a, a.id);
      const xc = await connection(mh, users.c, c.id);
      if (n < 3) {
        expectWaiting(xa, `Société Générale after ${n} failures`);
        expectWaiting(xc, `Modelo after ${n} failures`);
      } else {
        expect(xa).toMatchObject({ status: 'error', error: 'sync_error' });
        expect(xa.remediation.action).toBe('reauth');
        expect(xc).toMatchObject({ status: 'error', error: 'sync_error' });
        expect(xc.remediation.action).toBe('reconsent');
      }
    }
    expect((await mh.syncUserConnection({ userId: users.b, connectionId: b.id, ...attend })).data.status).toBe('error');
    const failed = (await history(mh, users.a, a.id))[0];
    expect(failed).toMatchObject({ action: 'client-update', method: 'UPDATE', fetchStatus: 'error' });
    expectWellFormed(failed as NonNullable<typeof failed>, a.id);
    expect(failed?.errorDetail).toMatch(/Société Générale/);
    const failedAt = ms(failed?.createdAt);

    // One failure, then 48 hours in that state, escalates too. No sync brings data meanwhile.
    let now = start;
    while (now < ms(until)) {
      ({ now } = await tick(ts, 'PT3H'));
      const xb = await connection(mh, users.b, b.id);
      const label = `b at ${new Date(now).toISOString()}`;
      if (now < ms(until)) {
        expect(xb.lastUpdated, label).toBe(b.lastUpdated);
        expect(xb, label).toMatchObject({ status: 'error', error: 'sync_error' });
        if (now - failedAt < 47 * HOUR_MS) expectWaiting(xb, label);
        if (now - failedAt > 49 * HOUR_MS) expect(xb.remediation.action, label).toBe('reauth');
        expect(await connection(mh, users.a, a.id), label).toMatchObject({ status: 'error', lastUpdated: a.lastUpdated });
        expect(await connection(mh, users.c, c.id), label).toMatchObject({ status: 'error', lastUpdated: c.lastUpdated });
      }
    }
    // The outage is over by the last step, whose scheduler run synced all three.
    for (const [key, conn] of [['a', a], ['b', b], ['c', c]] as const) {
      const userId = users[key];
      const x = await connection(mh, userId, conn.id);
      expect(x, key).toMatchObject({ status: 'ok', error: null });
      expect(x.remediation.action, key).toBe('none');
      expect(ms(x.lastUpdated), key).toBeGreaterThanOrEqual(ms(until));
      const syncs = await history(mh, userId, conn.id);
      // Nothing scheduled during the outage succeeded; the first scheduled sync after it did.
      const during = scheduled(syncs).filter((s) => ms(s.createdAt) < ms(until));
      expect(during.every((s) => s.fetchStatus === 'error'), key).toBe(true);
      expect(syncs[0]?.fetchStatus, key).toBe('success');
      expect(ms(syncs[0]?.createdAt) - ms(until), key).toBeLessThan(3 * HOUR_MS);
      syncs.forEach((s) => expectWellFormed(s, conn.id));
      const stored = await storedTransactions(ts, conn.id);
      expect(stored.rows, key).toBe(stored.distinct);
      expect(stored.rows, key).toBeGreaterThanOrEqual(txBefore[key]);
      expect(await apiTransactionCount(mh, userId, x.accountIds), key).toBe(stored.rows);
    }
    expect(await catalogStatus('Société Générale')).toBe('AVAILABLE');
  });
});

describe('syncs requested by the client application', () => {
  it('counts unattended requested syncs toward the budget and answers 429 with Retry-After once 4 were used in 24 hours', async () => {
    const userId = await newUser(mh, 'budget');
    const c = await connectAs(mh, userId, MODELO_ID, 'user_ok');
    expect(c.syncBudget).toEqual({ remaining: 4, resetsAt: null });

    for (let n = 1; n <= 4; n += 1) {
      const r = await mh.syncUserConnection({ userId, connectionId: c.id });
      expect(r.data.status).toBe('ok');
      expect((await connection(mh, userId, c.id)).syncBudget.remaining).toBe(4 - n);
    }
    const used = await history(mh, userId, c.id);
    expect(used.map((s) => [s.action, s.method, s.fetchStatus])).toEqual([
      ...Array.from({ length: 4 }, () => ['client-update', 'UPDATE', 'success']),
      [used.at(-1)?.action, 'ADD', 'success'],
    ]);
    const firstRequested = ms(used[3]?.createdAt);
    const exhausted = await connection(mh, userId, c.id);
    expect(exhausted.syncBudget).toEqual({ remaining: 0, resetsAt: new Date(firstRequested + DAY_MS).toISOString() });
    expect(exhausted.status).toBe('ok');

    const err = await rejection(mh.syncUserConnection({ userId, connectionId: c.id }));
    expect(err.response?.statusCode).toBe(429);
    const retryAfter = Number(err.response?.headers['retry-after']);
    const now = await clockNow(ts);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(Math.abs(retryAfter * 1000 - (firstRequested + DAY_MS - now))).toBeLessThan(5000);
    expect(typeof err.error).toBe('string');
    expect(err.error_description).toContain('Modelo Open Banking Mock');
    expect(await history(mh, userId, c.id)).toHaveLength(5);

    // With the user present the budget does not apply, and is not used.
    const attended = await mh.syncUserConnection({ userId, connectionId: c.id, ...ATTENDED });
    expect(attended.data.status).toBe('ok');
    const afterAttended = await history(mh, userId, c.id);
    expect(afterAttended).toHaveLength(6);
    expect(afterAttended[0]).toMatchObject({ action: 'client-update', method: 'UPDATE', fetchStatus: 'success' });
    expect((await connection(mh, userId, c.id)).syncBudget.remaining).toBe(0);

    // The scheduler respects the same budget: nothing runs until the first requested sync is 24 hours old.
    for (let step = 0; step < 7; step += 1) {
      const { now: at, ran } = await tick(ts, 'PT3H');
      const x = await connection(mh, userId, c.id);
      if (at < firstRequested + DAY_MS) {
        expect(ran.filter((s) => s.connectionId === c.id), new Date(at).toISOString()).toEqual([]);
        expect(x.nextSyncAt).not.toBeNull();
        expect(x).toMatchObject({ status: 'ok', error: null });
      }
    }
    // Once the Retry-After has passed an unattended request is accepted again.
    await advance(ts, `PT${Math.max(1, Math.ceil((firstRequested + DAY_MS - (await clockNow(ts))) / 1000) + 1)}S`);
    const again = await mh.syncUserConnection({ userId, connectionId: c.id });
    expect(again.data.status).toBe('ok');
    const final = await history(mh, userId, c.id);
    expect(final[0]).toMatchObject({ action: 'client-update', fetchStatus: 'success' });
    final.forEach((s) => expectWellFormed(s, c.id));
    const stored = await storedTransactions(ts, c.id);
    expect(stored.rows).toBe(stored.distinct);
    await mh.deleteUser({ userId });
  });

  it('shows as nextSyncAt a time the scheduler can really sync at: not before requested syncs that used up the budget free it', async () => {
    const userId = await newUser(mh, 'next');
    const c = await connectAs(mh, userId, MODELO_ID, 'user_ok');
    for (let n = 0; n < 4; n += 1) expect((await mh.syncUserConnection({ userId, connectionId: c.id })).data.status).toBe('ok');
    const x = await connection(mh, userId, c.id);
    expect(x.syncBudget.remaining).toBe(0);
    expect(x.nextSyncAt).not.toBeNull();
    expect(ms(x.nextSyncAt), `nextSyncAt ${x.nextSyncAt} while no unattended sync is possible before ${x.syncBudget.resetsAt}`).toBeGreaterThanOrEqual(ms(x.syncBudget.resetsAt));
    // And the scheduler indeed runs nothing before then.
    const { ran } = await tick(ts, 'PT7H');
    expect(ran.filter((s) => s.connectionId === c.id)).toEqual([]);
    await mh.deleteUser({ userId });
  });

  it('shares the budget between scheduled and requested syncs: after 2 scheduled syncs only 2 requests are accepted', async () => {
    const userId = await newUser(mh, 'shared');
    const c = await connectAs(mh, userId, MODELO_ID, 'user_ok');
    let ran = 0;
    while (ran < 2) ran += (await tick(ts, 'PT3H')).ran.filter((s) => s.connectionId === c.id).length;
    expect((await connection(mh, userId, c.id)).syncBudget.remaining).toBe(2);
    expect((await mh.syncUserConnection({ userId, connectionId: c.id })).data.status).toBe('ok');
    expect((await mh.syncUserConnection({ userId, connectionId: c.id })).data.status).toBe('ok');
    const err = await rejection(mh.syncUserConnection({ userId, connectionId: c.id }));
    expect(err.response?.statusCode).toBe(429);
    expect(Number(err.response?.headers['retry-after'])).toBeGreaterThan(0);
    const syncs = await history(mh, userId, c.id);
    expect(syncs.map((s) => s.action)).toEqual(['client-update', 'client-update', 'auto-update', 'auto-update', syncs.at(-1)?.action]);
    await mh.deleteUser({ userId });
  });

  it('never limits attended syncs: a user who is present can sync again and again without using the budget', async () => {
    const userId = await newUser(mh, 'attended');
    const c = await connectAs(mh, userId, MODELO_ID, 'user_ok');
    for (let n = 0; n < 6; n += 1) expect((await mh.syncUserConnection({ userId, connectionId: c.id, ...ATTENDED })).data.status).toBe('ok');
    const x = await connection(mh, userId, c.id);
    expect(x.syncBudget).toEqual({ remaining: 4, resetsAt: null });
    expect(x).toMatchObject({ status: 'ok', error: null });
    const syncs = await history(mh, userId, c.id);
    expect(syncs).toHaveLength(7);
    expect(syncs.slice(0, 6).every((s) => s.action === 'client-update' && s.method === 'UPDATE' && s.fetchStatus === 'success')).toBe(true);
    const stored = await storedTransactions(ts, c.id);
    expect(stored.rows).toBe(stored.distinct);
    expect(syncs.reduce((n, s) => n + s.counts.transactionsAdded, 0)).toBe(stored.rows);
    await mh.deleteUser({ userId });
  });

  it('answers error to an unattended request for a user_mfa connection and ok with the user present, which returns it to ok', async () => {
    const userId = await newUser(mh, 'mfa');
    const c = await connectAs(mh, userId, MODELO_ID, 'user_mfa');
    expect(c.status).toBe('ok');
    expect((await mh.syncUserConnection({ userId, connectionId: c.id })).data.status).toBe('error');
    const blocked = await connection(mh, userId, c.id);
    expect(blocked).toMatchObject({ status: 'error', error: 'mfa_required', lastUpdated: c.lastUpdated });
    expect(blocked.remediation.action).toBe('reauth');
    expect(blocked.syncBudget.remaining).toBe(3);
    const failed = (await history(mh, userId, c.id))[0];
    expect(failed).toMatchObject({ action: 'client-update', fetchStatus: 'mfa-required' });
    expectWellFormed(failed as NonNullable<typeof failed>, c.id);

    await advance(ts, 'PT1H');
    expect((await mh.syncUserConnection({ userId, connectionId: c.id, ...ATTENDED })).data.status).toBe('ok');
    const repaired = await connection(mh, userId, c.id);
    expect(repaired).toMatchObject({ status: 'ok', error: null });
    expect(repaired.remediation.action).toBe('none');
    expect(ms(repaired.lastUpdated)).toBeGreaterThan(ms(c.lastUpdated) + HOUR_MS - 60_000);
    await mh.deleteUser({ userId });
  });

  it('joins a request made while a sync runs: two concurrent requests on a user_slow connection make one sync and both answer', async () => {
    const userId = await newUser(mh, 'slow');
    // Connected as user_ok, then made slow at the bank: every bank call of its syncs is slow.
    const c = await connectAs(mh, userId, MODELO_ID, 'user_ok');
    expect(c.status).toBe('ok');
    const slow = await sandbox(ts.baseUrl, 'POST', `/sandbox/connections/${encodeURIComponent(c.id)}/behaviour`, { username: 'user_slow' });
    expect(slow.status).toBe(200);
    const [first, second] = await Promise.all([
      mh.syncUserConnection({ userId, connectionId: c.id }),
      mh.syncUserConnection({ userId, connectionId: c.id }),
    ]);
    expect(first.data.status).toBe('ok');
    expect(second.data.status).toBe('ok');
    const syncs = await history(mh, userId, c.id);
    expect(syncs.map((s) => [s.action, s.method, s.fetchStatus])).toEqual([['client-update', 'UPDATE', 'success'], [syncs[1]?.action, 'ADD', 'success']]);
    expect((await connection(mh, userId, c.id)).syncBudget.remaining).toBe(3);
    const stored = await storedTransactions(ts, c.id);
    expect(stored.rows).toBe(stored.distinct);
    await mh.deleteUser({ userId });
  }, 60_000);
});
