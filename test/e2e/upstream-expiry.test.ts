/**
 * A consent the provider itself ended, on a connection whose reconsent only moves Mooring's own date
 * (an Open Banking `tppConsent` entry: the sandbox Modelo bank; `user_expired` makes the bank end
 * the consent early). Only a new authorisation at the bank renews it: remediation `reauth`, never
 * `reconsent`; PATCH and the reconsent journey are refused and change nothing; a reauth brings the
 * connection back and syncs resume. And a PATCH made while a sync runs is not undone by the expiry
 * that sync brings back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessToken, call, connectBank, DAY_MS, MODELO_ID } from '../helpers/api.ts';
import { runJourney } from '../helpers/moneyhub.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { advanceClock, allEvents, attendedSync, clockNow, ofConnection, runScheduler, setBehaviour, webhookClient } from '../helpers/webhooks.ts';
import type { ApiClient } from '../helpers/api.ts';

let ts: TestServer;
let client: ApiClient;

beforeAll(async () => {
  // user_slow long enough for a PATCH and a behaviour switch to happen inside one bank call.
  ts = await startTestServer({}, { timers: { sandboxSlowCallMs: 3_000 } });
  client = await webhookClient(ts.baseUrl);
});
afterAll(async () => {
  await ts?.stop();
});

type Conn = Record<string, unknown> & { expiresAt: string | null; remediation: { action: string; reason: string } };
async function connection(userId: string, connectionId: string): Promise<Conn> {
  const found = (await client.mh.getUserConnections({ userId })).data.find((c) => c.id === connectionId);
  if (found === undefined) throw new Error(`no connection ${connectionId}`);
  return found as unknown as Conn;
}
async function patch(userId: string, connectionId: string, expiresAt: string) {
  const token = await accessToken(ts.baseUrl, client, 'user:update', userId);
  return call(ts.baseUrl, 'PATCH', `/users/${userId}/connections/${encodeURIComponent(connectionId)}`, { token, json: { expiresAt } });
}
const syncsOf = async (userId: string, connectionId: string): Promise<{ fetchStatus: string; errorDetail: string | null }[]> =>
  (await client.mh.getConnectionSyncs({ userId, connectionId })).data as unknown as { fetchStatus: string; errorDetail: string | null }[];

describe('an Open Banking tppConsent consent the bank ended early', () => {
  it('is expired with remediation reauth; PATCH and reconsent are refused and change nothing; a reauth repairs it and syncs resume', async () => {
    const { userId } = await client.mh.registerUser({ clientUserId: 'modelo-expired' });
    const connectionId = await connectBank(client, userId, MODELO_ID, 'user_ok');
    expect(await connection(userId, connectionId)).toMatchObject({ tppConsent: true, status: 'ok' });
    await advanceClock(ts.baseUrl, 'P3D');
    await setBehaviour(ts.baseUrl, connectionId, 'user_expired');
    expect(await attendedSync(client, userId, connectionId)).toBe('error');

    const expired = await connection(userId, connectionId);
    expect(expired).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired', nextSyncAt: null, remediation: { action: 'reauth' } });
    expect(expired.remediation.reason).toMatch(/ended the consent itself/);
    const [expiredEvent, ...more] = ofConnection(await allEvents(ts.baseUrl, client), connectionId, 'connectionExpired');
    expect(more).toHaveLength(0);
    expect(expiredEvent?.payload).toMatchObject({ connectionId, tppConsent: true, remediation: { action: 'reauth' } });

    // PATCH would only move Mooring's date while the bank goes on refusing: 400, and nothing changes.
    const wanted = new Date((await clockNow(ts.baseUrl)) + 30 * DAY_MS).toISOString();
    const refused = await patch(userId, connectionId, wanted);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'reauth_required', details: { field: 'connectionId' } });
    expect((refused.body as { message: string }).message).toMatch(/reauth/);
    expect(await connection(userId, connectionId)).toEqual(expired);

    // So is the reconsent journey: back to the client with invalid_request, nothing renewed.
    const reconsent = await client.mh.getReconsentAuthorizeUrlForCreatedUser({ userId, connectionId, expiresAt: wanted, state: 'rc', nonce: 'nrc' });
    const answer = await runJourney(reconsent);
    expect(answer.get('code')).toBeNull();
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('error_description')).toMatch(/reauth/);
    expect(await connection(userId, connectionId)).toEqual(expired);
    const attempts = (await syncsOf(userId, connectionId)).length;

    // A reauth (a new consent at the bank) brings it back; syncs are scheduled and succeed again.
    const reauth = await client.mh.getReauthAuthorizeUrlForCreatedUser({ userId, connectionId, state: 'ra', nonce: 'nra' });
    expect((await runJourney(reauth, 'user_ok')).get('error')).toBeNull();
    const repaired = await connection(userId, connectionId);
    expect(repaired).toMatchObject({ status: 'ok', error: null, extendedStatus: null, remediation: { action: 'none' } });
    expect(repaired.nextSyncAt).not.toBeNull();
    expect(Date.parse(repaired.expiresAt ?? '')).toBeGreaterThan(Date.parse(wanted));
    await advanceClock(ts.baseUrl, 'P1D');
    await runScheduler(ts.baseUrl);
    const history = await syncsOf(userId, connectionId);
    expect(history.length).toBeGreaterThanOrEqual(attempts + 2);
    expect(history.slice(0, history.length - attempts).every((s) => s.fetchStatus === 'success')).toBe(true);
    // The new consent is renewed at Mooring again as any tppConsent one.
    expect((await patch(userId, connectionId, new Date((await clockNow(ts.baseUrl)) + 60 * DAY_MS).toISOString())).status).toBe(204);
  });

  it('a PATCH made while a sync runs wins over the expiry that sync brings back; the next sync records it', async () => {
    const { userId } = await client.mh.registerUser({ clientUserId: 'modelo-race' });
    const connectionId = await connectBank(client, userId, MODELO_ID, 'user_ok');
    await setBehaviour(ts.baseUrl, connectionId, 'user_slow');
    const running = attendedSync(client, userId, connectionId);
    for (let i = 0; i < 100; i += 1) {
      const r = await ts.testDb.db.query(`select 1 from syncs where connection_id = $1 and state = 'running'`, [connectionId]);
      if (r.rowCount > 0) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    // The sync is at the bank (its first call takes user_slow's time); the client renews consent,
    // and the bank ends the consent before the sync's next calls.
    const renewedTo = new Date((await clockNow(ts.baseUrl)) + 60 * DAY_MS).toISOString();
    expect((await patch(userId, connectionId, renewedTo)).status).toBe(204);
    await setBehaviour(ts.baseUrl, connectionId, 'user_expired');
    await running;

    expect((await syncsOf(userId, connectionId))[0]?.errorDetail ?? '').toMatch(/Superseded/);
    expect(await connection(userId, connectionId)).toMatchObject({ status: 'ok', extendedStatus: null, expiresAt: renewedTo });
    expect(ofConnection(await allEvents(ts.baseUrl, client), connectionId, 'connectionExpired')).toHaveLength(0);

    // The bank still refuses: the next sync records its expiry, and the advice is reauth.
    expect(await attendedSync(client, userId, connectionId)).toBe('error');
    expect(await connection(userId, connectionId)).toMatchObject({ extendedStatus: 'expired', remediation: { action: 'reauth' } });
  }, 60_000);
});
