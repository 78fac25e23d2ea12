/**
 * GoCardless Bank Account Data end to end: the official client connects users through the
 * `gocardless` adapter to Mooring's GoCardless sandbox counterpart, configured as an operator
 * configures a real GoCardless account (a providers-file entry with its apiUrl and secret pair).
 * Over sandbox time: healthy syncs on demand and on schedule; the upstream's per-account daily
 * limit in the budget and nextSyncAt; a 429 (rate-limited, never a failed sync); revocation,
 * suspension, partial data and an outage, each with its status, error, remediation and webhook
 * events; the agreement expiring at the upstream's date and the reauth that renews it with the
 * same accounts; deletion deleting the requisition; one token pair for two Mooring servers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiClient } from '../helpers/api.ts';
import { goCardlessEntry, pairsIssued, providerRefOf, requisitionOf } from '../helpers/gocardless.ts';
import { atRedirect, connect, officialClientFor, rejection, runJourney, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { Browser } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';
import { adminCall, advanceClock, allEvents, clockNow, ofConnection, runScheduler, setWebhook, webhookClient } from '../helpers/webhooks.ts';
import { GC_SANDBOX_PREFIX, SANDBOX_GC_SECRET_ID, SANDBOX_GC_SECRET_KEY } from '../../src/sandbox/banks/index.ts';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const IP = '203.0.113.7';

interface Conn {
  id: string;
  status: string;
  error: string | null;
  extendedStatus: string | null;
  connectedOn: string;
  lastUpdated: string | null;
  expiresAt: string | null;
  accountIds: string[];
  nextSyncAt: string | null;
  lastAttemptAt: string | null;
  syncBudget: { remaining: number; resetsAt: string | null };
  rateLimitedUntil: string | null;
  remediation: { action: string; reason: string; retryAfter?: string };
}
interface Sync {
  fetchStatus: string | null;
  errorDetail: string | null;
  action: string;
}

let ts: TestServer;
let client: ApiClient;
let mh: MoneyhubClient;
let receiver: Receiver;
const PROVIDER = 'GoCardless Strict Bank';
const TPP_PROVIDER = 'GoCardless Sandbox Finance';
let providerId = '';
let tppProviderId = '';

beforeAll(async () => {
  ts = await startTestServer({}, {
    providers: (urls) => [
      goCardlessEntry(urls, { name: PROVIDER }),
      goCardlessEntry(urls, { name: TPP_PROVIDER, institutionId: 'SANDBOXFINANCE_SFIN0000', consentDays: 90, tppConsent: true }),
    ],
  });
  client = await webhookClient(ts.baseUrl);
  mh = client.mh;
  receiver = await startReceiver();
  await setWebhook(ts.baseUrl, client.clientId, receiver.url);
  providerId = ts.server.catalog.all().find((p) => p.name === PROVIDER)?.id ?? '';
  tppProviderId = ts.server.catalog.all().find((p) => p.name === TPP_PROVIDER)?.id ?? '';
});
afterAll(async () => {
  await receiver?.close();
  await ts?.stop();
});

async function connection(userId: string, connectionId: string): Promise<Conn> {
  const c = (await mh.getUserConnections({ userId })).data.find((x) => x.id === connectionId);
  if (c === undefined) throw new Error(`no connection ${connectionId}`);
  return c as unknown as Conn;
}
const syncs = async (userId: string, connectionId: string): Promise<Sync[]> =>
  (await mh.getConnectionSyncs({ userId, connectionId, params: { limit: 1000 } })).data as unknown as Sync[];
const attended = async (userId: string, connectionId: string): Promise<string> =>
  (await mh.syncUserConnection({ userId, connectionId, customerIpAddress: IP })).data.status;

async function connectAs(username: string, bankId = providerId): Promise<{ userId: string; connectionId: string }> {
  const { userId } = await mh.registerUser({ clientUserId: `gc-${username}-${Math.random().toString(36).slice(2)}` });
  const { connectionId } = await connect(mh, userId, bankId, username);
  return { userId, connectionId };
}

/** The agreement's end as the counterpart has it: accepted + access_valid_for_days. */
async function agreementEnd(connectionId: string): Promise<number> {
  const requisition = await providerRefOf(ts.testDb.db, connectionId);
  const r = await ts.testDb.db.query<{ accepted_at: Date; access_valid_for_days: number }>(
    'select a.accepted_at, a.access_valid_for_days from sandbox_gc_agreements a join sandbox_gc_requisitions q on q.agreement_id = a.id where q.id = $1',
    [requisition],
  );
  const row = r.rows[0];
  if (row === undefined) throw new Error('no agreement');
  return row.accepted_at.getTime() + row.access_valid_for_days * DAY_MS;
}

describe('GoCardless through the official client', () => {
  it('connects, reads every connection field back, and syncs on demand', async () => {
    const now = await clockNow(ts.baseUrl);
    const { userId, connectionId } = await connectAs('user_ok');
    const c = await connection(userId, connectionId);
    expect(c).toMatchObject({ status: 'ok', error: null, extendedStatus: null, rateLimitedUntil: null, remediation: { action: 'none' } });
    expect(c.accountIds).toHaveLength(2);
    // consentDays 120, capped by the institution's max_access_valid_for_days ("90"): the upstream's own date.
    expect(Date.parse(c.expiresAt ?? '')).toBe(await agreementEnd(connectionId));
    expect(Date.parse(c.expiresAt ?? '') - Date.parse(c.connectedOn)).toBeGreaterThanOrEqual(90 * DAY_MS - 60_000);
    expect(Date.parse(c.expiresAt ?? '') - Date.parse(c.connectedOn)).toBeLessThanOrEqual(90 * DAY_MS);
    expect(Date.parse(c.connectedOn)).toBeGreaterThanOrEqual(now);
    expect(c.lastUpdated).not.toBeNull();
    expect(Date.parse(c.nextSyncAt ?? '')).toBeGreaterThan(Date.parse(c.connectedOn));
    // The connect sync used one of the upstream's 4 calls per account and scope: 3 left, fewer than Mooring's own 4.
    expect(c.syncBudget.remaining).toBe(3);

    const accounts = (await mh.getAccounts({ userId })).data as unknown as { id: string; accountName: string; balance: { amount: { value: number } } }[];
    expect(accounts.map((a) => a.id).sort()).toEqual([...c.accountIds].sort());
    expect(accounts.map((a) => a.accountName).sort()).toEqual(['Current Account', 'Instant Saver']);
    const txs = (await mh.getTransactions({ userId, params: { limit: 1000 } })).data as unknown as { status: string; amount: { value: number } }[];
    expect(txs.filter((t) => t.status === 'posted').length).toBeGreaterThan(10);
    expect(txs.filter((t) => t.status === 'pending')).toHaveLength(1);

    expect(await attended(userId, connectionId)).toBe('ok');
    const after = await connection(userId, connectionId);
    expect(after.status).toBe('ok');
    expect(after.syncBudget.remaining).toBe(2);
    // No transaction stored twice, the pending one replaced.
    const again = (await mh.getTransactions({ userId, params: { limit: 1000 } })).data as unknown as { status: string }[];
    expect(again).toHaveLength(txs.length);
    expect(await pairsIssued(ts.testDb.db)).toBe(1);
  });

  it('syncs on schedule; the budget and nextSyncAt follow the upstream\'s per-account limit; its 429 is rate-limited, never a failed sync', async () => {
    const { userId, connectionId } = await connectAs('user_ok');
    await advanceClock(ts.baseUrl, 'PT6H1M');
    await runScheduler(ts.baseUrl);
    let history = await syncs(userId, connectionId);
    expect(history.filter((s) => s.action === 'auto-update' && s.fetchStatus === 'success')).toHaveLength(2);
    // Connect + one scheduled sync: the upstream has 2 calls left per account and scope.
    expect((await connection(userId, connectionId)).syncBudget.remaining).toBe(2);
    expect(await attended(userId, connectionId)).toBe('ok');
    expect(await attended(userId, connectionId)).toBe('ok');
    const spent = await connection(userId, connectionId);
    // The upstream says 0 left: no unattended sync before its reset (24 h after the connect sync's calls).
    expect(spent.syncBudget.remaining).toBe(0);
    const reset = Date.parse(spent.syncBudget.resetsAt ?? '');
    expect(reset).toBeGreaterThan(await clockNow(ts.baseUrl) + 17 * HOUR_MS);
    expect(Date.parse(spent.nextSyncAt ?? '')).toBeGreaterThanOrEqual(reset);
    const refused = await rejection(mh.syncUserConnection({ userId, connectionId }));
    expect(refused.response?.statusCode).toBe(429);
    const before = (await syncs(userId, connectionId)).length;
    await advanceClock(ts.baseUrl, 'PT6H1M');
    await runScheduler(ts.baseUrl);
    expect((await syncs(userId, connectionId)).length).toBe(before);

    // The user present asks anyway: the upstream answers 429; the sync is rate-limited, the connection stays ok.
    expect(await attended(userId, connectionId)).toBe('error');
    history = await syncs(userId, connectionId);
    expect(history[0]?.fetchStatus).toBe('rate-limited');
    const limited = await connection(userId, connectionId);
    expect(limited).toMatchObject({ status: 'ok', error: null, remediation: { action: 'wait' } });
    expect(Math.abs(Date.parse(limited.rateLimitedUntil ?? '') - reset)).toBeLessThan(5_000);
    expect(history.filter((s) => s.fetchStatus === 'error' || s.fetchStatus === 'credentials-error')).toEqual([]);

    // After the upstream's reset the scheduler syncs again.
    await advanceClock(ts.baseUrl, 'PT13H');
    await runScheduler(ts.baseUrl);
    history = await syncs(userId, connectionId);
    expect(history[0]).toMatchObject({ action: 'auto-update', fetchStatus: 'success' });
    expect((await connection(userId, connectionId)).status).toBe('ok');
  });

  it('the sandbox control switches a GoCardless connection\'s behaviour like any sandbox bank\'s', async () => {
    const { userId, connectionId } = await connectAs('user_ok');
    const res = await fetch(`${ts.baseUrl}/sandbox/connections/${encodeURIComponent(connectionId)}/behaviour`, {
      method: 'POST', headers: { authorization: 'Bearer test-admin-token-0123456789abcdef', 'content-type': 'application/json' }, body: JSON.stringify({ username: 'user_revoked' }),
    });
    expect(res.status).toBe(200);
    await attended(userId, connectionId);
    expect(await connection(userId, connectionId)).toMatchObject({ status: 'error', error: 'credentials_error', remediation: { action: 'reauth' } });
  });

  it('a 429 part-way through a sync of several accounts stops every call for the connection: none starts after it was answered, and the sync is rate-limited', async () => {
    const { userId, connectionId } = await connectAs('user_ok');
    // Another client of the same GoCardless account reads the first account's details until the
    // upstream's per-account daily limit (4) is spent (the connect sync used one): the next
    // details call for that account is a 429, while the second account still has calls left.
    const api = `${ts.baseUrl}${GC_SANDBOX_PREFIX}`;
    const gc = async (method: string, path: string, bearer?: string, json?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(`${api}${path}`, {
        method, headers: { accept: 'application/json', ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }), ...(json === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const token = String((await gc('POST', '/token/new/', undefined, { secret_id: SANDBOX_GC_SECRET_ID, secret_key: SANDBOX_GC_SECRET_KEY })).body.access);
    const accounts = (await gc('GET', `/requisitions/${await providerRefOf(ts.testDb.db, connectionId)}/`, token)).body.accounts as string[];
    expect(accounts).toHaveLength(2);
    for (let i = 0; i < 3; i += 1) expect((await gc('GET', `/accounts/${accounts[0] ?? ''}/details/`, token)).status).toBe(200);
    expect((await gc('GET', `/accounts/${accounts[0] ?? ''}/details/`, token)).status).toBe(429);

    expect(await attended(userId, connectionId)).toBe('error');
    const history = await syncs(userId, connectionId);
    expect(history[0]?.fetchStatus).toBe('rate-limited');
    expect(history.filter((s) => s.fetchStatus === 'error' || s.fetchStatus === 'credentials-error')).toEqual([]);
    const c = await connection(userId, connectionId);
    expect(c).toMatchObject({ status: 'ok', error: null, remediation: { action: 'wait' } });
    expect(c.rateLimitedUntil).not.toBeNull();

    const log = await adminCall(ts.baseUrl, 'GET', `/admin/api/provider-calls?${new URLSearchParams({ connectionId, limit: '500' }).toString()}`);
    expect(log.status).toBe(200);
    const rows = (log.body as { data: { at: string; syncId: string | null; endpoint: string; status: number | null; latencyMs: number }[] }).data;
    const syncIds = [...new Set(rows.map((r) => r.syncId))];
    const lastSync = rows.filter((r) => r.status === 429).map((r) => r.syncId);
    expect(new Set(lastSync).size).toBe(1);
    const ofSync = rows.filter((r) => r.syncId === lastSync[0]);
    expect(syncIds.length).toBeGreaterThan(1);
    const limited = ofSync.filter((r) => r.status === 429);
    expect(limited).toHaveLength(1);
    expect(limited[0]?.endpoint).toBe('/accounts/{accountId}/details/');
    const answeredAt = Date.parse(limited[0]?.at ?? '') + (limited[0]?.latencyMs ?? 0);
    // Every call of the sync started before the 429 was answered (2 ms for the log's millisecond rounding).
    // (Which of the second account's calls went out before it depends on timing: accounts are read concurrently.)
    for (const r of ofSync) expect(Date.parse(r.at)).toBeLessThanOrEqual(answeredAt + 2);
  });

  it('a bank that limits this customer (user_ratelimited) leaves the connection ok and waits for the reset it names', async () => {
    const { userId, connectionId } = await connectAs('user_ratelimited');
    const now = await clockNow(ts.baseUrl);
    expect(await attended(userId, connectionId)).toBe('error');
    const c = await connection(userId, connectionId);
    // Not an error: the connection waits for the reset the bank named.
    expect(c).toMatchObject({ status: 'ok', error: null, remediation: { action: 'wait' } });
    expect(Date.parse(c.rateLimitedUntil ?? '')).toBeGreaterThanOrEqual(now + 3_600_000 - 5_000);
    expect(c.remediation.retryAfter).toBe(c.rateLimitedUntil);
    expect((await syncs(userId, connectionId))[0]?.fetchStatus).toBe('rate-limited');
  });

  it('revocation, suspension, partial data and an outage each show their status, error, remediation and events', async () => {
    const cases = [
      { username: 'user_revoked', status: 'error', error: 'credentials_error', action: 'reauth' },
      { username: 'user_suspended', status: 'error', error: 'credentials_error', action: 'reauth' },
      { username: 'user_partial', status: 'error', error: 'sync_partial', action: 'wait' },
      { username: 'user_outage', status: 'error', error: 'sync_error', action: 'wait' },
    ];
    for (const k of cases) {
      const { userId, connectionId } = await connectAs(k.username);
      if (k.username !== 'user_partial') {
        expect((await connection(userId, connectionId)).status, k.username).toBe('ok');
        await attended(userId, connectionId);
      }
      const c = await connection(userId, connectionId);
      expect(c, k.username).toMatchObject({ status: k.status, error: k.error, remediation: { action: k.action } });
      expect(c.remediation.reason, k.username).toContain(PROVIDER);
      if (k.username !== 'user_partial') {
        await runScheduler(ts.baseUrl); // delivers events
        const changed = ofConnection(await allEvents(ts.baseUrl, client), connectionId, 'connectionStatusChanged');
        expect(changed.length, k.username).toBe(1);
        expect(changed[0]?.payload, k.username).toMatchObject({ connectionId });
      }
      if (k.username === 'user_suspended') {
        expect((await requisitionOf(ts.testDb.db, await providerRefOf(ts.testDb.db, connectionId)))?.status).toBe('SU');
        expect((await syncs(userId, connectionId))[0]?.errorDetail).toMatch(/suspended/);
      }
      if (k.username === 'user_revoked') expect((await syncs(userId, connectionId))[0]?.errorDetail).toMatch(/withdrawn|expired/);
    }
  });

  it('refuses journeys the bank rejects (RJ) or the user leaves unfinished (UA), and never makes a connection', async () => {
    for (const username of ['user_rejected', 'user_unfinished']) {
      const { userId } = await mh.registerUser({ clientUserId: `gc-refused-${username}` });
      const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: providerId, userId, state: 's1', nonce: 'n1' });
      const cb = await runJourney(url, username);
      expect(cb.get('error'), username).toBe('access_denied');
      expect((await mh.getUserConnections({ userId })).data, username).toEqual([]);
    }
  });

  it('a user who cancels at GoCardless comes back with ?ref&error and the client gets access_denied; an unknown ref is an expired link', async () => {
    const { userId } = await mh.registerUser({ clientUserId: 'gc-cancel' });
    const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: providerId, userId, state: 's2', nonce: 'n2' });
    const browser = new Browser();
    const consent = await browser.follow(url, atRedirect);
    const atBank = await browser.submit(consent, {}, { button: 'allow', stopAt: atRedirect });
    const back = await browser.submit(atBank, {}, { button: 'cancel', stopAt: atRedirect });
    expect(browser.history.some((u) => u.includes('/connect/callback?ref=') && u.includes('error=UserCancelledSession'))).toBe(true);
    expect(new URL(back.location ?? '').searchParams.get('error')).toBe('access_denied');
    expect((await mh.getUserConnections({ userId })).data).toEqual([]);
    const stray = await fetch(`${ts.baseUrl}/connect/callback?ref=no-such-journey`, { redirect: 'manual' });
    expect(stray.status).toBe(400);
    expect(await stray.text()).toContain('This link has expired');
  });

  it('deleting the connection deletes the requisition at GoCardless', async () => {
    const { userId, connectionId } = await connectAs('user_ok');
    const requisition = await providerRefOf(ts.testDb.db, connectionId);
    expect((await requisitionOf(ts.testDb.db, requisition))?.status).toBe('LN');
    await mh.deleteUserConnection({ userId, connectionId });
    expect(await requisitionOf(ts.testDb.db, requisition)).toBeNull();
  });

  it('a second Mooring server over the same database uses the same token pair', async () => {
    const second = await startTestServer({}, { testDb: ts.testDb, providers: (urls) => [goCardlessEntry(urls, { name: PROVIDER })] });
    try {
      const issued = await pairsIssued(ts.testDb.db);
      const { userId } = await mh.registerUser({ clientUserId: 'gc-second-server' });
      const { connectionId } = await connect(mh, userId, providerId, 'user_ok');
      const other = await officialClientFor(second.baseUrl, { clientId: client.clientId, clientSecret: client.clientSecret });
      const res = await other.syncUserConnection({ userId, connectionId, customerIpAddress: IP });
      expect(res.data.status).toBe('ok');
      expect(await pairsIssued(ts.testDb.db)).toBe(issued);
    } finally {
      await second.stop();
    }
  });

  it('the agreement expires at the upstream\'s date; reauth makes a new agreement and requisition and keeps the accounts', async () => {
    const { userId, connectionId } = await connectAs('user_ok');
    const before = await connection(userId, connectionId);
    const end = Date.parse(before.expiresAt ?? '');
    const oldRequisition = await providerRefOf(ts.testDb.db, connectionId);
    await advanceClock(ts.baseUrl, `PT${Math.ceil((end - (await clockNow(ts.baseUrl))) / 1000) + 60}S`);
    await runScheduler(ts.baseUrl);
    const expired = await connection(userId, connectionId);
    expect(expired).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired', nextSyncAt: null, remediation: { action: 'reauth' } });
    await runScheduler(ts.baseUrl);
    expect(ofConnection(await allEvents(ts.baseUrl, client), connectionId, 'connectionExpired')).toHaveLength(1);

    const url = await mh.getReauthAuthorizeUrlForCreatedUser({ userId, connectionId, state: 'ra', nonce: 'nra' });
    const cb = await runJourney(url, 'user_ok');
    expect(cb.get('error')).toBeNull();
    const renewed = await connection(userId, connectionId);
    expect(renewed).toMatchObject({ status: 'ok', error: null, extendedStatus: null });
    expect(renewed.accountIds.sort()).toEqual([...before.accountIds].sort());
    expect(Date.parse(renewed.expiresAt ?? '')).toBe(await agreementEnd(connectionId));
    expect(Date.parse(renewed.expiresAt ?? '')).toBeGreaterThan(end + 80 * DAY_MS);
    const newRequisition = await providerRefOf(ts.testDb.db, connectionId);
    expect(newRequisition).not.toBe(oldRequisition);
    expect(await requisitionOf(ts.testDb.db, oldRequisition)).toBeNull();
    expect((await requisitionOf(ts.testDb.db, newRequisition))?.status).toBe('LN');
  });

  it('the institution ending access early (requisition EX long before the agreement\'s end): expired at the sync, reauth, nothing more scheduled, one connectionExpired; reauth brings it back', async () => {
    const { userId, connectionId } = await connectAs('user_expired');
    const granted = Date.parse((await connection(userId, connectionId)).expiresAt ?? '');
    const requisition = await providerRefOf(ts.testDb.db, connectionId);
    await advanceClock(ts.baseUrl, 'P5D');
    const syncFrom = await clockNow(ts.baseUrl);
    expect(await attended(userId, connectionId)).toBe('error');
    const syncTo = await clockNow(ts.baseUrl);
    expect((await requisitionOf(ts.testDb.db, requisition))?.status).toBe('EX');
    const c = await connection(userId, connectionId);
    expect(c).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired', nextSyncAt: null, remediation: { action: 'reauth' } });
    const expiredAt = Date.parse(c.expiresAt ?? '');
    expect(expiredAt).toBeGreaterThanOrEqual(syncFrom);
    expect(expiredAt).toBeLessThanOrEqual(syncTo);
    expect(granted - expiredAt).toBeGreaterThan(80 * DAY_MS);
    expect((await syncs(userId, connectionId)).at(0)).toMatchObject({ fetchStatus: 'credentials-error' });

    const attempts = (await syncs(userId, connectionId)).length;
    await advanceClock(ts.baseUrl, 'P2D');
    await runScheduler(ts.baseUrl);
    await advanceClock(ts.baseUrl, 'P2D');
    await runScheduler(ts.baseUrl);
    expect(await syncs(userId, connectionId)).toHaveLength(attempts);
    expect(await connection(userId, connectionId)).toMatchObject({ expiresAt: c.expiresAt, extendedStatus: 'expired' });
    const expiredEvents = ofConnection(await allEvents(ts.baseUrl, client), connectionId, 'connectionExpired');
    expect(expiredEvents).toHaveLength(1);
    expect(expiredEvents[0]?.payload).toMatchObject({ connectionId, expiredAt: c.expiresAt, tppConsent: false, remediation: { action: 'reauth' } });

    const url = await mh.getReauthAuthorizeUrlForCreatedUser({ userId, connectionId, state: 'rx', nonce: 'nrx' });
    expect((await runJourney(url, 'user_ok')).get('error')).toBeNull();
    const renewed = await connection(userId, connectionId);
    expect(renewed).toMatchObject({ status: 'ok', error: null, extendedStatus: null, remediation: { action: 'none' } });
    expect(Date.parse(renewed.expiresAt ?? '')).toBe(await agreementEnd(connectionId));
    expect(renewed.nextSyncAt).not.toBeNull();
  });

  it('reconsent of a tppConsent connection is a new agreement at GoCardless (through its consent page), never a local date change', async () => {
    const { userId, connectionId } = await connectAs('user_ok', tppProviderId);
    const before = await connection(userId, connectionId);
    const wanted = new Date((await clockNow(ts.baseUrl)) + 60 * DAY_MS).toISOString();
    const patched = await rejection(mh.updateUserConnection({ userId, connectionId, expiresAt: wanted }));
    expect(patched.response?.statusCode).toBe(400);
    expect((await connection(userId, connectionId)).expiresAt).toBe(before.expiresAt);

    const url = await mh.getReconsentAuthorizeUrlForCreatedUser({ userId, connectionId, expiresAt: wanted, state: 'rc', nonce: 'nrc' });
    const browser = new Browser();
    const consent = await browser.follow(url, atRedirect);
    const atBank = await browser.submit(consent, {}, { button: 'allow', stopAt: atRedirect });
    expect(atBank.url).toContain('/sandbox/gocardless/link/');
    const back = await browser.submit(atBank, { username: 'user_ok', password: 'x' }, { button: 'approve', stopAt: atRedirect });
    expect(new URL(back.location ?? '').searchParams.get('code')).not.toBeNull();
    const renewed = await connection(userId, connectionId);
    // 60 days asked for: the new agreement runs 60 days from its acceptance, and that is expiresAt.
    expect(Date.parse(renewed.expiresAt ?? '')).toBe(await agreementEnd(connectionId));
    expect(Math.abs(Date.parse(renewed.expiresAt ?? '') - Date.parse(wanted))).toBeLessThan(DAY_MS);
    expect(renewed.accountIds.sort()).toEqual([...before.accountIds].sort());
  });
});

describe('a journey GoCardless refuses as expired', () => {
  it('a requisition that is EX when Mooring reads it at the callback (its agreement ran out meanwhile) ends with access_denied, no connection', async () => {
    const { userId } = await mh.registerUser({ clientUserId: 'gc-expired-journey' });
    const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: providerId, userId, state: 's-ex', nonce: 'n-ex' });
    const browser = new Browser();
    const consent = await browser.follow(url, atRedirect);
    const atBank = await browser.submit(consent, {}, { button: 'allow', stopAt: atRedirect });
    // The user approves at the bank; before the browser brings the answer back, the agreement's 90 days pass.
    const approved = await browser.submit(atBank, { username: 'user_ok', password: 'any-password' }, { button: 'approve', stopAt: (u) => u.includes('/connect/callback') });
    expect(approved.location).toContain('/connect/callback');
    await advanceClock(ts.baseUrl, 'P91D');
    const back = await browser.follow(approved.location ?? '', atRedirect);
    const answer = new URL(back.location ?? '').searchParams;
    expect(answer.get('error')).toBe('access_denied');
    expect(answer.get('error_description')).toMatch(/expired/);
    expect((await mh.getUserConnections({ userId })).data).toEqual([]);
  });
});
