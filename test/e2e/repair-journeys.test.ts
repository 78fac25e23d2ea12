/**
 * Repair journeys with the official client: reauth, reconsent and refresh on the same connection,
 * async connect, auth requests, pushed authorisation requests and POST /request request URIs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { atRedirect, connect, officialClient, REDIRECT_URI, runJourney, sandbox, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { Browser } from '../helpers/browser.ts';

const DAY_MS = 86_400_000;
const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';

type Conn = Record<string, unknown> & { id: string; status: string; error: string | null; expiresAt: string | null; userConsentedAt: string; extendedStatus: string | null };

describe('repair journeys and server-side flows', () => {
  let ts: TestServer;
  let mh: MoneyhubClient;
  let catalog: { id: string; name: string }[];
  const idOf = (name: string): string => catalog.find((c) => c.name === name)?.id ?? '';

  beforeAll(async () => {
    ts = await startTestServer();
    ({ mh } = await officialClient(ts.baseUrl, 'client_secret_basic'));
    catalog = (await mh.listConnections()) as typeof catalog;
  });
  afterAll(async () => ts.stop());

  async function connection(userId: string, id: string): Promise<Conn> {
    const found = (await mh.getUserConnections({ userId })).data.find((c) => c.id === id);
    if (found === undefined) throw new Error(`no connection ${id}`);
    return found as unknown as Conn;
  }

  async function exchange(callback: URLSearchParams, state: string, nonce: string, userId: string): Promise<Record<string, unknown>> {
    expect(callback.get('error_description') ?? callback.get('error')).toBeNull();
    const tokens = await mh.exchangeCodeForTokens({ paramsFromCallback: { code: callback.get('code'), state: callback.get('state') }, localParams: { state, nonce, sub: userId } });
    return tokens.claims() as Record<string, unknown>;
  }

  it('reauth renews consent on the same connection and returns it to ok after its sync', async () => {
    const { userId } = await mh.registerUser({ clientUserId: 'reauth' });
    const { connectionId } = await connect(mh, userId, idOf('Nationwide Open Banking'), 'user_ok');
    await sandbox(ts.baseUrl, 'POST', `/sandbox/connections/${encodeURIComponent(connectionId)}/behaviour`, { username: 'user_revoked' });
    expect((await mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.1' })).data.status).toBe('error');
    const broken = await connection(userId, connectionId);
    expect(broken).toMatchObject({ status: 'error', error: 'credentials_error', remediation: { action: 'reauth' } });

    await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'P10D' });
    const url = await mh.getReauthAuthorizeUrlForCreatedUser({ userId, connectionId, state: 'ra', nonce: 'nra' });
    const claims = await exchange(await runJourney(url, 'user_ok'), 'ra', 'nra', userId);
    expect(claims['mh:con_id']).toBe(connectionId);
    const repaired = await connection(userId, connectionId);
    expect(repaired).toMatchObject({ status: 'ok', error: null });
    expect(Date.parse(repaired.expiresAt ?? '')).toBeGreaterThan(Date.parse(broken.expiresAt ?? '') + 9 * DAY_MS);
    expect(Date.parse(repaired.userConsentedAt)).toBeGreaterThan(Date.parse(broken.userConsentedAt));
    expect((await mh.getUserConnections({ userId })).data).toHaveLength(1);
  });

  it('reconsent sets expiresAt to the requested date without a bank login, only for tppConsent connections', async () => {
    const { userId } = await mh.registerUser({ clientUserId: 'reconsent' });
    const { connectionId } = await connect(mh, userId, MODELO_ID, 'user_ok');
    await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'P91D' });
    const expired = await connection(userId, connectionId);
    expect(expired).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired', remediation: { action: 'reconsent' } });

    const clock = await sandbox(ts.baseUrl, 'GET', '/sandbox/clock');
    const wanted = new Date(Date.parse(clock.json.now as string) + 60 * DAY_MS).toISOString();
    const url = await mh.getReconsentAuthorizeUrlForCreatedUser({ userId, connectionId, expiresAt: wanted, state: 'rc', nonce: 'nrc' });
    const browser = new Browser();
    const consent = await browser.follow(url, atRedirect);
    expect(consent.html).toContain('Keep sharing');
    const back = await browser.submit(consent, {}, { button: 'allow', stopAt: atRedirect });
    expect(back.location?.startsWith(REDIRECT_URI)).toBe(true);
    expect(browser.history.some((u) => u.includes('/sandbox/ob/'))).toBe(false);
    const claims = await exchange(new URL(back.location ?? '').searchParams, 'rc', 'nrc', userId);
    expect(claims['mh:con_id']).toBe(connectionId);
    const renewed = await connection(userId, connectionId);
    expect(renewed.expiresAt).toBe(wanted);
    expect(renewed.extendedStatus).toBeNull();
    expect(Date.parse(renewed.userConsentedAt)).toBeGreaterThanOrEqual(Date.parse(clock.json.now as string));
    expect(Date.parse(renewed.userConsentedAt)).toBeLessThan(Date.parse(clock.json.now as string) + 60_000);

    const nationwide = await connect(mh, userId, idOf('Nationwide Open Banking'), 'user_ok');
    const refused = await mh.getReconsentAuthorizeUrlForCreatedUser({ userId, connectionId: nationwide.connectionId, state: 'x', nonce: 'y' });
    const answer = await runJourney(refused);
    expect(answer.get('error')).toBe('invalid_request');
    expect(answer.get('error_description')).toMatch(/tppConsent/);
  });

  it('refresh takes a legacy connection through a one-time code and refuses non-legacy ones', async () => {
    const { userId } = await mh.registerUser({ clientUserId: 'refresh' });
    const { connectionId } = await connect(mh, userId, idOf('Aviva'), 'user_mfa');
    await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'P1D' });
    await sandbox(ts.baseUrl, 'POST', '/sandbox/scheduler/run');
    expect(await connection(userId, connectionId)).toMatchObject({ status: 'error', error: 'mfa_required', remediation: { action: 'refresh' } });

    const url = await mh.getRefreshAuthorizeUrlForCreatedUser({ userId, connectionId, state: 'rf', nonce: 'nrf' });
    const claims = await exchange(await runJourney(url, 'user_mfa', { otp: '123456' }), 'rf', 'nrf', userId);
    expect(claims['mh:con_id']).toBe(connectionId);
    expect(await connection(userId, connectionId)).toMatchObject({ status: 'ok', error: null, expiresAt: null });

    const modelo = await connect(mh, userId, MODELO_ID, 'user_ok');
    const refused = await runJourney(await mh.getRefreshAuthorizeUrlForCreatedUser({ userId, connectionId: modelo.connectionId, state: 'a', nonce: 'b' }));
    expect(refused.get('error')).toBe('invalid_request');
    expect(refused.get('error_description')).toMatch(/legacy/);
  });

  it('async connect answers before the first sync finishes; the ID token names the sync', async () => {
    const { userId } = await mh.registerUser({ clientUserId: 'async' });
    const { connectionId, syncId } = await connect(mh, userId, MODELO_ID, 'user_slow', { enableAsync: true });
    expect(typeof syncId).toBe('string');
    const first = await mh.getSync({ userId, syncId: syncId ?? '' });
    expect(first.data).toMatchObject({ connectionId, method: 'ADD' });
    expect(['queued', 'running']).toContain((first.data as unknown as { state: string }).state);
    let state = '';
    for (let i = 0; i < 100 && state !== 'done'; i += 1) {
      await new Promise((r) => setTimeout(r, 200));
      state = ((await mh.getSync({ userId, syncId: syncId ?? '' })).data as unknown as { state: string }).state;
    }
    expect(state).toBe('done');
    expect((await mh.getSync({ userId, syncId: syncId ?? '' })).data.fetchStatus).toBe('success');
  });

  it('runs a connect journey through the auth-requests API', async () => {
    const { userId } = await mh.registerUser({ clientUserId: 'auth-request' });
    const created = await mh.createAuthRequest({ redirectUri: REDIRECT_URI, userId, scope: `openid id:${MODELO_ID}` } as Parameters<MoneyhubClient['createAuthRequest']>[0]);
    expect(created.data.status).toBe('pending');
    const authUrl = created.data.redirectParams.authUrl ?? '';
    const callback = await runJourney(authUrl, 'user_ok');
    const completed = await mh.completeAuthRequest({ id: created.data.id, authParams: { code: callback.get('code') ?? '', state: callback.get('state') ?? '' } });
    const connectionId = (completed.data as unknown as { connectionId: string }).connectionId;
    expect(completed.data.status).toBe('complete');
    expect((await mh.getUserConnections({ userId })).data.map((c) => c.id)).toEqual([connectionId]);
    expect((await mh.getAuthRequest({ id: created.data.id })).data.status).toBe('complete');
    expect((await mh.getAllAuthRequests()).data.map((a) => a.id)).toContain(created.data.id);

    const reauth = await mh.createAuthRequest({ redirectUri: REDIRECT_URI, userId, connectionId, scope: 'openid reauth' } as Parameters<MoneyhubClient['createAuthRequest']>[0]);
    const cb = await runJourney(reauth.data.redirectParams.authUrl ?? '', 'user_ok');
    const done = await mh.completeAuthRequest({ id: reauth.data.id, authParams: { code: cb.get('code') ?? '', state: cb.get('state') ?? '' } });
    expect((done.data as unknown as { connectionId: string }).connectionId).toBe(connectionId);
  });

  it('connects through a pushed authorisation request', async () => {
    const { userId } = await mh.registerUser({ clientUserId: 'par' });
    const url = await mh.getPushedAuthorisationRequestUrl({ bankId: MODELO_ID, userId, state: 'par-s', nonce: 'par-n' } as Parameters<MoneyhubClient['getPushedAuthorisationRequestUrl']>[0]);
    expect(url).toContain('request_uri=');
    const claims = await exchange(await runJourney(url, 'user_ok'), 'par-s', 'par-n', userId);
    expect((await mh.getUserConnections({ userId })).data.map((c) => c.id)).toEqual([claims['mh:con_id']]);
  });

  it('turns a signed request object posted to /request into a usable request_uri', async () => {
    const { userId } = await mh.registerUser({ clientUserId: 'request-uri' });
    const requestObject = await mh.requestObject({
      scope: `openid id:${MODELO_ID}`, state: 'ro-s', nonce: 'ro-n',
      claims: { id_token: { sub: { essential: true, value: userId }, 'mh:con_id': { essential: true } } },
    } as Parameters<MoneyhubClient['requestObject']>[0]);
    const uri = await mh.getRequestUri(requestObject);
    expect(uri).toMatch(/^urn:/);
    const url = await mh.getAuthorizeUrlFromRequestUri({ requestUri: uri });
    const claims = await exchange(await runJourney(url, 'user_ok'), 'ro-s', 'ro-n', userId);
    expect(claims['mh:con_id']).toMatch(new RegExp(`^${MODELO_ID}:`));

    const forged = await fetch(`${ts.baseUrl}/request`, { method: 'POST', headers: { 'content-type': 'application/jws' }, body: `${requestObject.slice(0, -4)}AAAA` });
    expect(forged.status).toBe(400);
  });
});
