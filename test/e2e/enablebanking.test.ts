/**
 * Enable Banking end to end with the official client: two providers-file entries with
 * `adapter: enablebanking` pointed at the sandbox counterpart (a GB bank whose maximum consent is
 * shorter than the entry asks for, and a Finnish one), a user connected through the counterpart's
 * own authorisation page, every connection field read back, syncs on demand and on schedule, a
 * reauth that keeps the accounts, and the lifecycle over sandbox time: the session expiring at its
 * valid_until, revocation at the bank, rate limits, partial data, an outage, and deletion closing
 * the session at the bank.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../src/providers/catalog.ts';
import { Browser } from '../helpers/browser.ts';
import {
  applicationJwt, applicationKey, authorizationIdIn, ebCall, enableBankingEntry, sessionIdOfAuthorization,
} from '../helpers/enablebanking.ts';
import { actAtProvider, atRedirect, sandbox, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { accessToken, call, DAY_MS, type ApiClient } from '../helpers/api.ts';
import { advanceClock, allEvents, clockNow, ofConnection, runScheduler, setBehaviour, webhookClient } from '../helpers/webhooks.ts';

const APPLICATION_ID = 'a0c5e2f4-6b1d-4e8a-9f3c-2d7b8e1a5c90';
const KEY = applicationKey();
const HOUR_MS = 3_600_000;

let ts: TestServer;
let client: ApiClient;
let mh: MoneyhubClient;
let gb: CatalogEntry;
let fi: CatalogEntry;
let tpp: CatalogEntry;

beforeAll(async () => {
  ts = await startTestServer({}, {
    providers: (urls) => [
      // Asks for 120 days; the bank allows 90: the session (and the connection) end at the bank's maximum less a margin.
      enableBankingEntry(urls, { name: 'Enable Banking GB (sandbox)', applicationId: APPLICATION_ID, privateKey: KEY, consentDays: 120 }),
      enableBankingEntry(urls, {
        name: 'Enable Banking FI (sandbox)', applicationId: APPLICATION_ID, privateKey: KEY, aspsp: { name: 'Mock ASPSP', country: 'FI' }, accountTypes: ['cash:current', 'card'],
      }),
      // The Finnish bank allows 180 days; a tppConsent entry renews its consent by reconsent.
      enableBankingEntry(urls, {
        name: 'Enable Banking FI tpp (sandbox)', applicationId: APPLICATION_ID, privateKey: KEY, aspsp: { name: 'Mock ASPSP', country: 'FI' }, tppConsent: true, consentDays: 90,
      }),
    ],
  });
  client = await webhookClient(ts.baseUrl);
  mh = client.mh;
  const byName = (name: string): CatalogEntry => {
    const e = ts.server.catalog.all().find((p) => p.name === name);
    if (e === undefined) throw new Error(`no provider ${name}`);
    return e;
  };
  gb = byName('Enable Banking GB (sandbox)');
  fi = byName('Enable Banking FI (sandbox)');
  tpp = byName('Enable Banking FI tpp (sandbox)');
});
afterAll(async () => ts?.stop());

type Conn = Record<string, unknown> & {
  id: string; status: string; error: string | null; expiresAt: string | null; lastUpdated: string; connectedOn: string; extendedStatus: string | null;
  accountIds: string[]; remediation: { action: string; reason: string; retryAfter?: string }; rateLimitedUntil?: string | null;
};

async function connectionOf(userId: string, connectionId: string): Promise<Conn> {
  const found = (await mh.getUserConnections({ userId })).data.find((c) => c.id === connectionId);
  if (found === undefined) throw new Error(`no connection ${connectionId}`);
  return found as unknown as Conn;
}

/** A browser journey from an authorisation URL through Mooring's consent page and the bank's page. */
async function journey(url: string, username: string, decision: 'approve' | 'cancel' = 'approve'): Promise<{ params: URLSearchParams; history: string[] }> {
  const browser = new Browser();
  const consent = await browser.follow(url, atRedirect);
  const atBank = await browser.submit(consent, {}, { button: 'allow', stopAt: atRedirect });
  const end = decision === 'approve'
    ? await actAtProvider(browser, atBank, username)
    : await browser.submit(atBank, { username }, { button: 'cancel', stopAt: atRedirect });
  if (end.location === null || !atRedirect(end.location)) throw new Error(`journey did not return: ${end.url} ${end.status} ${end.html.slice(0, 400)}`);
  return { params: new URL(end.location).searchParams, history: browser.history };
}

/** Connects a new user to `provider` as `username`; answers the user, the connection and the bank's session id. */
async function connect(provider: CatalogEntry, username = 'user_ok'): Promise<{ userId: string; connectionId: string; sessionId: string }> {
  const { userId } = await mh.registerUser({ clientUserId: `eb-${username}-${Math.random().toString(36).slice(2)}` });
  const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: provider.id, userId, state: 'st-connect', nonce: 'nn-connect' });
  const { params, history } = await journey(url, username);
  expect(params.get('error')).toBeNull();
  const tokens = await mh.exchangeCodeForTokens({ paramsFromCallback: { code: params.get('code'), state: params.get('state') }, localParams: { state: 'st-connect', nonce: 'nn-connect', sub: userId } });
  const connectionId = String(tokens.claims()['mh:con_id']);
  return { userId, connectionId, sessionId: await sessionIdOfAuthorization(ts, authorizationIdIn(history)) };
}

/** The session's status as Enable Banking's GET /sessions/{id} reports it. */
async function sessionAtBank(sessionId: string): Promise<string> {
  const res = await ebCall(ts, await applicationJwt(APPLICATION_ID, KEY), 'GET', `/sessions/${sessionId}`);
  expect(res.status).toBe(200);
  return String(res.body.status);
}

async function syncsOf(userId: string, connectionId: string): Promise<{ fetchStatus: string }[]> {
  return (await mh.getConnectionSyncs({ userId, connectionId })).data as unknown as { fetchStatus: string }[];
}

describe('connecting through Enable Banking', () => {
  it('connects with the official client and describes the connection truthfully: accounts, balances, paged transactions, expiry at the session end', async () => {
    const before = await clockNow(ts.baseUrl);
    const { userId, connectionId, sessionId } = await connect(gb);
    const after = await clockNow(ts.baseUrl);
    const c = await connectionOf(userId, connectionId);
    expect(c).toMatchObject({ name: gb.name, type: 'api', tppConsent: false, status: 'ok', error: null, extendedStatus: null, rateLimitedUntil: null, remediation: { action: 'none' } });
    expect(c.id.startsWith(`${gb.id}:`)).toBe(true);
    expect(Date.parse(String(c.nextSyncAt))).toBeGreaterThan(after);
    expect(Date.parse(String(c.userConsentedAt))).toBeGreaterThanOrEqual(before);
    // consentDays 120, capped by the bank's 90-day maximum less an hour: expiresAt is the session's valid_until.
    const expiresAt = Date.parse(c.expiresAt ?? '');
    expect(expiresAt).toBeGreaterThanOrEqual(before + 90 * DAY_MS - HOUR_MS);
    expect(expiresAt).toBeLessThanOrEqual(after + 90 * DAY_MS - HOUR_MS);
    expect(Date.parse(c.connectedOn)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(c.lastUpdated)).toBeLessThanOrEqual(after);
    expect(c.accountIds).toHaveLength(2);
    expect(await sessionAtBank(sessionId)).toBe('AUTHORIZED');
    const session = await ebCall(ts, await applicationJwt(APPLICATION_ID, KEY), 'GET', `/sessions/${sessionId}`);
    expect(Date.parse(String((session.body.access as { valid_until: string }).valid_until))).toBe(expiresAt);

    const accounts = (await mh.getAccounts({ userId })).data as unknown as { id: string; accountName: string; type: string; currency: string; balance: { amount: { value: number } } }[];
    expect(accounts.map((a) => [a.accountName, a.type, a.currency]).sort()).toEqual([['Current Account', 'cash:current', 'GBP'], ['Instant Saver', 'savings', 'GBP']]);
    expect(new Set(accounts.map((a) => a.id))).toEqual(new Set(c.accountIds));
    // 30 transactions of history over two accounts, served 10 to a page: every page was followed.
    const token = await accessToken(ts.baseUrl, client, 'transactions:read:all', userId);
    const txs = (await call(ts.baseUrl, 'GET', '/v2.0/transactions?limit=1000', { token })).body as { data: { id: string; status: string; amount: { value: number } }[] };
    expect(txs.data).toHaveLength(30);
    expect(txs.data.every((t) => t.status === 'posted' || t.status === 'pending')).toBe(true);
    expect(txs.data.some((t) => t.amount.value < 0)).toBe(true);
    expect(txs.data.some((t) => t.amount.value > 0)).toBe(true);
  });

  it('connects to a second bank (another country and currency) with the same application', async () => {
    const { userId, connectionId } = await connect(fi);
    expect((await connectionOf(userId, connectionId)).status).toBe('ok');
    const accounts = (await mh.getAccounts({ userId })).data as unknown as { type: string; currency: string }[];
    expect(accounts.map((a) => [a.type, a.currency]).sort()).toEqual([['card', 'EUR'], ['cash:current', 'EUR']]);
  });

  it('syncs on demand and on schedule, bringing new transactions as the bank books them', async () => {
    const { userId, connectionId } = await connect(gb);
    expect((await mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.9' })).data.status).toBe('ok');
    const token = await accessToken(ts.baseUrl, client, 'transactions:read:all', userId);
    const count = async (): Promise<number> => ((await call(ts.baseUrl, 'GET', '/v2.0/transactions?limit=1000', { token })).body as { data: unknown[] }).data.length;
    expect(await count()).toBe(30);
    await advanceClock(ts.baseUrl, 'P2D');
    await runScheduler(ts.baseUrl);
    const synced = await connectionOf(userId, connectionId);
    expect(synced).toMatchObject({ status: 'ok', error: null });
    expect(await count()).toBe(32);
    expect((await syncsOf(userId, connectionId)).filter((s) => s.fetchStatus === 'success').length).toBeGreaterThanOrEqual(3);
  });

  it('a journey cancelled at the bank returns access_denied and makes no connection', async () => {
    const { userId } = await mh.registerUser({ clientUserId: 'eb-cancel' });
    const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: gb.id, userId, state: 'st-cancel', nonce: 'nn-cancel' });
    const { params } = await journey(url, 'user_ok', 'cancel');
    expect(params.get('error')).toBe('access_denied');
    expect(params.get('state')).toBe('st-cancel');
    expect((await mh.getUserConnections({ userId })).data).toHaveLength(0);
  });
});

describe('what the bank says decides the connection', () => {
  it('the session expiring at its valid_until: reauth reminders, then expired with reauth, and the bank reports EXPIRED', async () => {
    const { userId, connectionId, sessionId } = await connect(gb);
    const { expiresAt } = await connectionOf(userId, connectionId);
    const t0 = await clockNow(ts.baseUrl);
    await advanceClock(ts.baseUrl, `PT${Math.floor((Date.parse(expiresAt ?? '') - t0) / 60_000) - 3 * 24 * 60}M`);
    await runScheduler(ts.baseUrl);
    expect((await connectionOf(userId, connectionId)).status).toBe('ok');
    expect(await sessionAtBank(sessionId)).toBe('AUTHORIZED');
    await advanceClock(ts.baseUrl, 'P3DT1M');
    await runScheduler(ts.baseUrl);
    const c = await connectionOf(userId, connectionId);
    expect(c).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired', remediation: { action: 'reauth' } });
    expect(await sessionAtBank(sessionId)).toBe('EXPIRED');
    const events = await allEvents(ts.baseUrl, client);
    expect(ofConnection(events, connectionId, 'reauthReminder').length).toBeGreaterThan(0);
    expect(ofConnection(events, connectionId, 'connectionExpired')).toHaveLength(1);
    expect(ofConnection(events, connectionId, 'connectionExpired')[0]?.payload).toMatchObject({ connectionId, remediation: { action: 'reauth' } });
  });

  it('the bank ending the session early (EXPIRED long before valid_until): expired at the sync, reconsent for a tppConsent entry, nothing more scheduled, one connectionExpired; reconsent brings it back', async () => {
    const { userId, connectionId, sessionId } = await connect(tpp);
    const granted = Date.parse((await connectionOf(userId, connectionId)).expiresAt ?? '');
    await advanceClock(ts.baseUrl, 'P3D');
    await setBehaviour(ts.baseUrl, connectionId, 'user_expired');
    const syncFrom = await clockNow(ts.baseUrl);
    expect((await mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.9' })).data.status).toBe('error');
    const syncTo = await clockNow(ts.baseUrl);
    expect(await sessionAtBank(sessionId)).toBe('EXPIRED');
    const c = await connectionOf(userId, connectionId);
    expect(c).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired', nextSyncAt: null, remediation: { action: 'reconsent' } });
    // The bank gave no earlier date than its valid_until (still ahead): expired at the sync's time, months before the granted end.
    const expiredAt = Date.parse(c.expiresAt ?? '');
    expect(expiredAt).toBeGreaterThanOrEqual(syncFrom);
    expect(expiredAt).toBeLessThanOrEqual(syncTo);
    expect(granted - expiredAt).toBeGreaterThan(80 * DAY_MS);
    expect((await syncsOf(userId, connectionId)).at(0)).toMatchObject({ fetchStatus: 'credentials-error' });

    // No more syncs: the schedule runs days on and nothing is attempted, and the expiry is announced once.
    const attempts = (await syncsOf(userId, connectionId)).length;
    await advanceClock(ts.baseUrl, 'P2D');
    await runScheduler(ts.baseUrl);
    await advanceClock(ts.baseUrl, 'P2D');
    await runScheduler(ts.baseUrl);
    expect(await syncsOf(userId, connectionId)).toHaveLength(attempts);
    expect(await connectionOf(userId, connectionId)).toMatchObject({ expiresAt: c.expiresAt, extendedStatus: 'expired' });
    const expiredEvents = ofConnection(await allEvents(ts.baseUrl, client), connectionId, 'connectionExpired');
    expect(expiredEvents).toHaveLength(1);
    expect(expiredEvents[0]?.payload).toMatchObject({ connectionId, expiredAt: c.expiresAt, tppConsent: true, remediation: { action: 'reconsent' } });

    const wanted = new Date((await clockNow(ts.baseUrl)) + 60 * DAY_MS).toISOString();
    const url = await mh.getReconsentAuthorizeUrlForCreatedUser({ userId, connectionId, expiresAt: wanted, state: 'st-rx', nonce: 'nn-rx' });
    expect((await journey(url, 'user_ok')).params.get('error')).toBeNull();
    const renewed = await connectionOf(userId, connectionId);
    expect(renewed).toMatchObject({ status: 'ok', error: null, extendedStatus: null, remediation: { action: 'none' } });
    expect(Math.abs(Date.parse(renewed.expiresAt ?? '') - Date.parse(wanted))).toBeLessThan(HOUR_MS);
    expect(renewed.nextSyncAt).not.toBeNull();
  });

  it('revocation at the bank is credentials_error with reauth; reauth makes a new session and keeps the account ids', async () => {
    const { userId, connectionId, sessionId } = await connect(gb);
    const before = await connectionOf(userId, connectionId);
    await setBehaviour(ts.baseUrl, connectionId, 'user_revoked');
    expect((await mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.9' })).data.status).toBe('error');
    const broken = await connectionOf(userId, connectionId);
    expect(broken).toMatchObject({ status: 'error', error: 'credentials_error', remediation: { action: 'reauth' } });
    expect(await sessionAtBank(sessionId)).toBe('REVOKED');
    const events = await allEvents(ts.baseUrl, client);
    expect(ofConnection(events, connectionId, 'connectionStatusChanged').at(-1)?.payload).toMatchObject({ current: { status: 'error', error: 'credentials_error' } });

    await advanceClock(ts.baseUrl, 'P5D');
    const url = await mh.getReauthAuthorizeUrlForCreatedUser({ userId, connectionId, state: 'st-re', nonce: 'nn-re' });
    const { params, history } = await journey(url, 'user_ok');
    const tokens = await mh.exchangeCodeForTokens({ paramsFromCallback: { code: params.get('code'), state: params.get('state') }, localParams: { state: 'st-re', nonce: 'nn-re', sub: userId } });
    expect(tokens.claims()['mh:con_id']).toBe(connectionId);
    const repaired = await connectionOf(userId, connectionId);
    expect(repaired).toMatchObject({ status: 'ok', error: null, remediation: { action: 'none' } });
    expect(new Set(repaired.accountIds)).toEqual(new Set(before.accountIds));
    expect(Date.parse(repaired.expiresAt ?? '')).toBeGreaterThan(Date.parse(before.expiresAt ?? '') + 4 * DAY_MS);
    const newSession = await sessionIdOfAuthorization(ts, authorizationIdIn(history));
    expect(newSession).not.toBe(sessionId);
    expect(await sessionAtBank(newSession)).toBe('AUTHORIZED');
    // The replaced session was closed at the bank.
    expect(await sessionAtBank(sessionId)).toBe('CLOSED');
    expect((await mh.getUserConnections({ userId })).data).toHaveLength(1);
    expect((await mh.getAccounts({ userId })).data).toHaveLength(2);
  });

  it('a 429 ASPSP_RATE_LIMIT_EXCEEDED is a rate-limited sync, never a failed one, until the next scheduled attempt', async () => {
    const { userId, connectionId } = await connect(gb, 'user_ratelimited');
    await advanceClock(ts.baseUrl, 'P1D');
    await runScheduler(ts.baseUrl);
    const c = await connectionOf(userId, connectionId);
    expect(c.status).toBe('ok');
    expect(typeof c.rateLimitedUntil).toBe('string');
    const statuses = (await syncsOf(userId, connectionId)).map((s) => s.fetchStatus);
    expect(statuses).toContain('rate-limited');
    expect(statuses).not.toContain('error');
  });

  it('partial data is sync_partial with wait', async () => {
    const { userId, connectionId } = await connect(gb, 'user_partial');
    const c = await connectionOf(userId, connectionId);
    expect(c).toMatchObject({ status: 'error', error: 'sync_partial', remediation: { action: 'wait' } });
    expect((await mh.getAccounts({ userId })).data).toHaveLength(2);
  });

  it('an upstream outage is sync_error with wait, and the next sync after it returns the connection to ok', async () => {
    const { userId, connectionId } = await connect(gb);
    const until = new Date((await clockNow(ts.baseUrl)) + 6 * HOUR_MS).toISOString();
    expect((await sandbox(ts.baseUrl, 'POST', `/sandbox/providers/${gb.id}/outage`, { until })).status).toBe(200);
    expect((await mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.9' })).data.status).toBe('error');
    expect(await connectionOf(userId, connectionId)).toMatchObject({ status: 'error', error: 'sync_error', remediation: { action: 'wait' } });
    await advanceClock(ts.baseUrl, 'PT7H');
    expect((await mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.9' })).data.status).toBe('ok');
    expect(await connectionOf(userId, connectionId)).toMatchObject({ status: 'ok', error: null });
  });

  it('unattended syncs the bank wants the customer present for are mfa_required with reauth', async () => {
    const { userId, connectionId } = await connect(gb, 'user_mfa');
    await advanceClock(ts.baseUrl, 'P1D');
    await runScheduler(ts.baseUrl);
    expect(await connectionOf(userId, connectionId)).toMatchObject({ status: 'error', error: 'mfa_required', remediation: { action: 'reauth' } });
  });

  it('a bank that keeps serving the day of connection (user_stale) leaves lastUpdated there, and the connection asks for a resync', async () => {
    const { userId, connectionId } = await connect(gb, 'user_stale');
    const connected = await connectionOf(userId, connectionId);
    await advanceClock(ts.baseUrl, 'P3D');
    await runScheduler(ts.baseUrl);
    const later = await connectionOf(userId, connectionId);
    expect((await syncsOf(userId, connectionId)).filter((s) => s.fetchStatus === 'success').length).toBeGreaterThanOrEqual(2);
    expect(later.lastUpdated).toBe(connected.lastUpdated);
    expect(later).toMatchObject({ status: 'error', error: 'resync', remediation: { action: 'sync' } });
  });

  it('reconsent of a tppConsent connection is a new session at Enable Banking (through its page), never a local date change', async () => {
    const { userId, connectionId, sessionId } = await connect(tpp);
    const before = await connectionOf(userId, connectionId);
    const wanted = new Date((await clockNow(ts.baseUrl)) + 60 * DAY_MS).toISOString();
    // The session's valid_until cannot move at the bank: a new date here alone would be untrue.
    const patched = await mh.updateUserConnection({ userId, connectionId, expiresAt: wanted }).then(() => null, (e: { response?: { statusCode?: number } }) => e);
    expect(patched?.response?.statusCode).toBe(400);
    expect((await connectionOf(userId, connectionId)).expiresAt).toBe(before.expiresAt);

    const url = await mh.getReconsentAuthorizeUrlForCreatedUser({ userId, connectionId, expiresAt: wanted, state: 'st-rc', nonce: 'nn-rc' });
    const { params, history } = await journey(url, 'user_ok');
    expect(params.get('error')).toBeNull();
    const renewed = await connectionOf(userId, connectionId);
    const newSession = await sessionIdOfAuthorization(ts, authorizationIdIn(history));
    expect(newSession).not.toBe(sessionId);
    expect(await sessionAtBank(newSession)).toBe('AUTHORIZED');
    expect(await sessionAtBank(sessionId)).toBe('CLOSED');
    // The new session runs to the date asked for (the bank allows it), and that is expiresAt.
    expect(Math.abs(Date.parse(renewed.expiresAt ?? '') - Date.parse(wanted))).toBeLessThan(HOUR_MS);
    expect(new Set(renewed.accountIds)).toEqual(new Set(before.accountIds));
  });

  it('deleting the connection closes the session at the bank', async () => {
    const { userId, connectionId, sessionId } = await connect(gb);
    expect(await sessionAtBank(sessionId)).toBe('AUTHORIZED');
    await mh.deleteUserConnection({ userId, connectionId });
    expect(await sessionAtBank(sessionId)).toBe('CLOSED');
  });
});
