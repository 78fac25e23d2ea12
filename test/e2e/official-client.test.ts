/**
 * The official Moneyhub Node client, unchanged, against a running Mooring: one run per client
 * authentication method. Everything goes over HTTP; journeys follow Mooring's and the banks' forms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.ts';
import { domainNow } from '../helpers/time.ts';
import { officialClient, rejection, runJourney, type AuthMethod, type MoneyhubClient } from '../helpers/moneyhub.ts';

const DAY_MS = 86_400_000;
const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';


describe.each<AuthMethod>(['client_secret_basic', 'client_secret_post', 'private_key_jwt'])('the official Moneyhub client (%s)', (method) => {
  let ts: TestServer;
  /** The server's domain time (tests start it at a fixed instant). */
  let now: () => number;
  let mh: MoneyhubClient;
  let clientId: string;
  let catalog: { id: string; name: string; type: string }[];
  let userId: string;
  const connected = new Map<string, string>();

  beforeAll(async () => {
    ts = await startTestServer();
    now = await domainNow(ts.baseUrl, ADMIN_TOKEN);
    ({ mh, clientId } = await officialClient(ts.baseUrl, method));
  });
  afterAll(async () => ts.stop());

  it('discovers the OpenID provider with every field the client needs', async () => {
    const config = (await mh.getOpenIdConfig()) as Record<string, unknown>;
    expect(config.issuer).toBe(`${ts.baseUrl}/oidc`);
    for (const field of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'registration_endpoint', 'pushed_authorization_request_endpoint']) {
      expect(typeof config[field]).toBe('string');
    }
    expect(config.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'private_key_jwt']));
    expect(config.token_endpoint_auth_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256']));
    expect(config.claims_parameter_supported).toBe(true);
    expect(config.request_parameter_supported).toBe(true);
    expect(config.claims_supported).toEqual(expect.arrayContaining(['sub', 'mh:con_id']));
    expect(config).not.toHaveProperty('introspection_endpoint');
    // Revocation (RFC 7009) is advertised with its signing algorithms, as the client requires.
    expect(config.revocation_endpoint).toBe(`${ts.baseUrl}/oidc/token/revocation`);
    expect(config.revocation_endpoint_auth_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256']));
  });

  it('lists the catalog, ignoring the ?undefined the client sends', async () => {
    catalog = (await mh.listConnections()) as typeof catalog;
    expect(catalog.map((c) => c.name)).toEqual([
      'Modelo Open Banking Mock', 'Nationwide Open Banking', 'Handelsbanken', 'PensionBee', 'Société Générale', 'Aviva', 'Zoopla', 'Mouseprice', 'Autotrader',
    ]);
    const test = await mh.listTestConnections();
    expect(test.map((c) => c.id)).toEqual([MODELO_ID]);
    const api = await mh.listAPIConnections();
    expect(api.map((c) => c.name)).toEqual(['Nationwide Open Banking', 'Handelsbanken', 'PensionBee', 'Société Générale']);
    expect(test[0]).toMatchObject({ type: 'test', country: 'GB', status: { sync: 'AVAILABLE', auth: 'AVAILABLE' } });
    expect(await mh.listBetaConnections()).toEqual([]);
  });

  it('registers a user and reads it back alone and in the list', async () => {
    const user = await mh.registerUser({ clientUserId: 'app-user-1' });
    userId = user.userId;
    expect(user).toMatchObject({ clientUserId: 'app-user-1', clientId, managedBy: 'client', userType: 'test', connectionIds: [] });
    expect(userId).toMatch(/^[0-9a-f]{24}$/);
    expect(await mh.getUser({ userId })).toEqual(user);
    const list = await mh.getUsers();
    expect(list.data.map((u) => u.userId)).toContain(userId);
  });

  it.each([
    ['Modelo Open Banking Mock', 'test', true, true],
    ['Nationwide Open Banking', 'api', true, false],
    ['Handelsbanken', 'api', false, false],
    ['Aviva', 'legacy', false, false],
    ['Zoopla', 'zoopla', true, true],
  ])('connects %s through the browser journey and gets mh:con_id in the ID token', async (name, type, expires, tppConsent) => {
    const bank = catalog.find((c) => c.name === name);
    if (bank === undefined) throw new Error(`no ${name} in the catalog`);
    const state = `state-${Math.random().toString(36).slice(2)}`;
    const nonce = `nonce-${Math.random().toString(36).slice(2)}`;
    const before = now();
    const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: bank.id, userId, state, nonce });
    const callback = await runJourney(url, 'user_ok');
    expect(callback.get('state')).toBe(state);
    expect(callback.get('error_description') ?? callback.get('error')).toBeNull();
    const tokens = await mh.exchangeCodeForTokens({
      paramsFromCallback: { code: callback.get('code'), state: callback.get('state') },
      localParams: { state, nonce, sub: userId },
    });
    const claims = tokens.claims();
    expect(claims.sub).toBe(userId);
    const connectionId = claims['mh:con_id'] as string;
    expect(connectionId).toMatch(new RegExp(`^${bank.id}:[0-9a-f-]{36}$`));
    connected.set(name, connectionId);

    const { data } = await mh.getUserConnections({ userId });
    const c = data.find((x) => x.id === connectionId) as unknown as Record<string, unknown>;
    expect(c).toBeDefined();
    expect(c.name).toBe(name);
    expect(c.type).toBe(type);
    expect(c.status).toBe('ok');
    expect(c.error).toBeNull();
    expect(c.extendedStatus).toBeNull();
    expect(c.tppConsent).toBe(tppConsent);
    const connectedOn = Date.parse(c.connectedOn as string);
    expect(connectedOn).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(c.userConsentedAt as string)).toBe(connectedOn);
    if (expires) expect(Date.parse(c.expiresAt as string)).toBe(connectedOn + 90 * DAY_MS);
    else expect(c.expiresAt).toBeNull();
    // lastUpdated comes from the data retrieved by the first sync, never later than now.
    expect(typeof c.lastUpdated).toBe('string');
    expect(Date.parse(c.lastUpdated as string)).toBeLessThanOrEqual(now());
    expect((c.accountIds as string[]).length).toBeGreaterThan(0);
    expect(c.remediation).toEqual({ action: 'none', reason: expect.any(String) });
    expect(c.syncBudget).toMatchObject({ remaining: expect.any(Number) });

    const syncs = await mh.getConnectionSyncs({ userId, connectionId });
    expect(syncs.data).toHaveLength(1);
    expect(syncs.data[0]).toMatchObject({ connectionId, method: 'ADD', fetchStatus: 'success' });
    const one = await mh.getSync({ userId, syncId: syncs.data[0]?.id ?? '' });
    expect(one.data.id).toBe(syncs.data[0]?.id);

    const user = await mh.getUser({ userId });
    expect(user.connectionIds).toContain(connectionId);
  });

  it('syncs a connection on request through the resource server', async () => {
    const connectionId = connected.get('Modelo Open Banking Mock') ?? '';
    const res = await mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.9' }).catch((e: { response?: { body?: string } }) => {
      throw new Error(`sync failed: ${e.response?.body ?? String(e)}`);
    });
    expect(res.data.status).toBe('ok');
    const syncs = await mh.getConnectionSyncs({ userId, connectionId });
    expect(syncs.data.map((s) => s.method)).toEqual(['UPDATE', 'ADD']);
    expect(syncs.data[0]?.action).toBe('client-update');
  });

  it('renews consent with updateUserConnection within 90 days and refuses beyond', async () => {
    const connectionId = connected.get('Modelo Open Banking Mock') ?? '';
    const in30 = new Date(now() + 30 * DAY_MS).toISOString();
    expect(await mh.updateUserConnection({ userId, connectionId, expiresAt: in30 })).toBe(204);
    const { data } = await mh.getUserConnections({ userId });
    const c = data.find((x) => x.id === connectionId);
    expect(c?.expiresAt).toBe(in30);

    const in120 = new Date(now() + 120 * DAY_MS).toISOString();
    const err = await rejection(mh.updateUserConnection({ userId, connectionId, expiresAt: in120 }));
    expect(err.response?.statusCode).toBe(400);
    expect(err.error).toBe('invalid_expires_at');
    expect(err.error_description).toMatch(/90 days/);
    const after = (await mh.getUserConnections({ userId })).data.find((x) => x.id === connectionId);
    expect(after?.expiresAt).toBe(in30);
  });

  it('refuses to renew consent on a connection whose provider sets no expiry', async () => {
    const connectionId = connected.get('Handelsbanken') ?? '';
    const err = await rejection(mh.updateUserConnection({ userId, connectionId, expiresAt: new Date(now() + DAY_MS).toISOString() }));
    expect(err.response?.statusCode).toBe(400);
    expect(err.error).toBe('no_consent_expiry');
  });

  it('deletes a connection, then the user, after which the user is a 404 with a code', async () => {
    const connectionId = connected.get('Nationwide Open Banking') ?? '';
    expect(await mh.deleteUserConnection({ userId, connectionId })).toBe(204);
    const { data } = await mh.getUserConnections({ userId });
    expect(data.map((c) => c.id)).not.toContain(connectionId);
    expect(data).toHaveLength(connected.size - 1);

    expect(await mh.deleteUser({ userId })).toBe(204);
    const err = await rejection(mh.getUser({ userId }));
    expect(err.response?.statusCode).toBe(404);
    expect(err.error).toBe('not_found');
    const accounts = await ts.testDb.db.query('select 1 from accounts where user_id = $1 union all select 1 from transactions where user_id = $1 union all select 1 from syncs where user_id = $1', [userId]);
    expect(accounts.rowCount).toBe(0);
  });
});
