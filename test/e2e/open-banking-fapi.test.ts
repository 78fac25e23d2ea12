/**
 * UK Open Banking through the FAPI path, end to end with the official client: every sandbox Open
 * Banking bank (code + JARM), a second bank configured as an operator would (the sandbox bank under
 * another name, hybrid `code id_token` through the fragment relay), a third with tls_client_auth;
 * Mooring's refusals of ID tokens a careful client must refuse; and the bank-side facts of
 * revocation, re-authentication, rate limits and deletion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importPKCS8, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import { createHash } from 'node:crypto';
import { sandboxCatalog, type CatalogEntry } from '../../src/providers/catalog.ts';
import { buildObClient } from '../../src/providers/openbanking/client.ts';
import { Browser } from '../helpers/browser.ts';
import { configuredSandboxBank } from '../helpers/fapi.ts';
import { atRedirect, connect, officialClient, REDIRECT_URI, sandbox, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { testPki } from '../helpers/pki.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { runJourney } from '../helpers/moneyhub.ts';
import { advanceClock, allEvents, clockNow, ofConnection, runScheduler, setBehaviour, webhookClient } from '../helpers/webhooks.ts';

let ts: TestServer;
let mh: MoneyhubClient;
let hybrid: CatalogEntry;
let tlsAuth: CatalogEntry;

beforeAll(async () => {
  ts = await startTestServer({}, {
    providers: (urls) => [
      configuredSandboxBank(urls, { name: 'Second Bank (hybrid)', settings: { responseType: 'code id_token' } }),
      configuredSandboxBank(urls, { name: 'Third Bank (tls_client_auth)', slug: 'modelo', settings: { clientId: 'mooring-tls', tokenEndpointAuthMethod: 'tls_client_auth' } }),
    ],
  });
  mh = (await officialClient(ts.baseUrl, 'client_secret_basic')).mh;
  const byName = (name: string): CatalogEntry => {
    const e = ts.server.catalog.all().find((p) => p.name === name);
    if (e === undefined) throw new Error(`no provider ${name}`);
    return e;
  };
  hybrid = byName('Second Bank (hybrid)');
  tlsAuth = byName('Third Bank (tls_client_auth)');
});
afterAll(async () => ts?.stop());

const sandboxOb = (): CatalogEntry[] => sandboxCatalog(ts.baseUrl).filter((e) => e.adapter === 'openbanking');

/** The consent as the bank itself reports it (a client-credentials token over mutual TLS, as any careful client reads it). */
async function bankConsent(provider: CatalogEntry, consentId: string): Promise<{ status: number; consentStatus?: string }> {
  const c = await buildObClient(provider, { timeoutMs: 10_000, realNow: Date.now });
  try {
    const t = await oidc.clientCredentialsGrant(c.config, { scope: 'accounts' });
    const res = await undiciFetch(`${c.settings.resourceBaseUrl}/account-access-consents/${consentId}`, {
      dispatcher: c.dispatcher, headers: { authorization: `Bearer ${t.access_token}`, 'x-fapi-interaction-id': crypto.randomUUID() },
    });
    const body = (await res.json().catch(() => ({}))) as { Data?: { Status?: string } };
    return { status: res.status, ...(body.Data?.Status === undefined ? {} : { consentStatus: body.Data.Status }) };
  } finally {
    await c.dispatcher.close();
  }
}

describe('Open Banking through the FAPI path', () => {
  it('connects the official client to every sandbox Open Banking bank (code + JARM), with a sync that reads accounts over mutual TLS', async () => {
    for (const p of sandboxOb()) {
      const user = await mh.registerUser({ clientUserId: `fapi-${p.bankRef}` });
      const { connectionId } = await connect(mh, user.userId, p.id);
      const { data } = await mh.getUserConnections({ userId: user.userId });
      const c = data.find((x) => x.id === connectionId);
      expect(c?.status, p.name).toBe('ok');
      const accounts = await mh.getAccounts({ userId: user.userId });
      expect(accounts.data.length, p.name).toBeGreaterThan(0);
    }
  });

  it('connects a second bank from the providers file with a hybrid code id_token answer (relayed from the fragment) and a third with tls_client_auth', async () => {
    for (const p of [hybrid, tlsAuth]) {
      const user = await mh.registerUser({ clientUserId: `configured-${p.id}` });
      const { connectionId } = await connect(mh, user.userId, p.id);
      const { data } = await mh.getUserConnections({ userId: user.userId });
      expect(data.find((x) => x.id === connectionId)?.status, p.name).toBe('ok');
      expect((await mh.syncUserConnection({ userId: user.userId, connectionId })).data.status, p.name).toBe('ok');
    }
  });
});

/** A connection as its client reads it (the Moneyhub fields and Mooring's own, remediation included). */
async function connectionOf(userId: string, connectionId: string): Promise<Record<string, unknown>> {
  const { data } = await mh.getUserConnections({ userId });
  const c = data.find((x) => x.id === connectionId);
  if (c === undefined) throw new Error(`no connection ${connectionId}`);
  return c as unknown as Record<string, unknown>;
}

/** Runs a journey to the configured hybrid bank up to its answer (the fragment URL), without letting the browser relay it. */
async function hybridAnswer(username = 'user_ok'): Promise<{ browser: Browser; answer: URL; userId: string; state: string; nonce: string }> {
  const user = await mh.registerUser({ clientUserId: `hybrid-${Math.random().toString(36).slice(2)}` });
  const state = `st-${Math.random().toString(36).slice(2)}`;
  const nonce = `nn-${Math.random().toString(36).slice(2)}`;
  const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: hybrid.id, userId: user.userId, state, nonce });
  const browser = new Browser();
  const atAnswer = (u: string): boolean => u.includes('/connect/callback#');
  const consent = await browser.follow(url, atAnswer);
  const login = await browser.submit(consent, {}, { button: 'allow', stopAt: atAnswer });
  const back = await browser.submit(login, { username, password: 'any' }, { button: 'approve', stopAt: atAnswer });
  if (back.location === null || !atAnswer(back.location)) throw new Error(`no hybrid answer: ${back.status} ${back.html.slice(0, 300)}`);
  return { browser, answer: new URL(back.location), userId: user.userId, state, nonce };
}

/** The answer with its front-channel ID token re-signed by the bank's own key after `change` (so only the claims are wrong). */
async function tampered(answer: URL, change: (claims: Record<string, unknown>) => void): Promise<URL> {
  const params = new URLSearchParams(answer.hash.slice(1));
  const idToken = params.get('id_token') ?? '';
  const claims = decodeJwt(idToken) as Record<string, unknown>;
  change(claims);
  const key = await importPKCS8(testPki().bankSigningKey, 'PS256');
  params.set('id_token', await new SignJWT(claims).setProtectedHeader(decodeProtectedHeader(idToken) as { alg: string }).sign(key));
  const out = new URL(answer);
  out.hash = params.toString();
  return out;
}

/** Connects through the hybrid bank, reading the consent id from the bank's front-channel ID token on the way. */
async function connectHybrid(username = 'user_ok'): Promise<{ userId: string; connectionId: string; consentId: string }> {
  const { browser, answer, userId, state, nonce } = await hybridAnswer(username);
  const consentId = String(decodeJwt(new URLSearchParams(answer.hash.slice(1)).get('id_token') ?? '').openbanking_intent_id);
  const end = await browser.follow(answer.toString(), atRedirect);
  const params = new URL(end.location ?? '').searchParams;
  const tokens = await mh.exchangeCodeForTokens({ paramsFromCallback: { code: params.get('code'), state: params.get('state') }, localParams: { state, nonce, sub: userId } });
  return { userId, connectionId: String(tokens.claims()['mh:con_id']), consentId };
}

const halfHash = (value: string): string => createHash('sha256').update(value).digest().subarray(0, 16).toString('base64url');

describe('ID tokens Mooring refuses (hybrid answers)', () => {
  const refusals: [string, (c: Record<string, unknown>) => void][] = [
    ['a c_hash that is not the code\'s', (c) => { c.c_hash = halfHash('another-code'); }],
    ['a nonce that is not the journey\'s', (c) => { c.nonce = 'someone-elses-nonce'; }],
    ['an intent id that is not the consent the user was asked to authorise', (c) => { c.openbanking_intent_id = 'aac-not-this-one'; }],
  ];
  for (const [what, change] of refusals) {
    it(`refuses ${what}: the journey fails, no connection is made`, async () => {
      const { browser, answer, userId } = await hybridAnswer();
      const end = await browser.follow((await tampered(answer, change)).toString(), atRedirect);
      expect(end.location === null ? null : new URL(end.location).searchParams.get('error')).toBe('temporarily_unavailable');
      expect(end.location?.startsWith(REDIRECT_URI)).toBe(true);
      expect((await mh.getUserConnections({ userId })).data).toHaveLength(0);
    });
  }

  it('the untampered answer, relayed the same way, connects (the refusals above are the tampering, not the relay)', async () => {
    const { browser, answer } = await hybridAnswer();
    const end = await browser.follow(answer.toString(), atRedirect);
    expect(end.location === null ? null : new URL(end.location).searchParams.get('code')).toBeTruthy();
  });
});

describe('what the bank says decides the connection', () => {
  it('a revoked consent (Revoked at the bank) is credentials_error with reauth', async () => {
    const { userId, connectionId, consentId } = await connectHybrid('user_revoked');
    expect((await mh.syncUserConnection({ userId, connectionId })).data.status).toBe('error');
    const c = await connectionOf(userId, connectionId);
    expect(c.error).toBe('credentials_error');
    expect((c.remediation as { action?: string }).action).toBe('reauth');
    expect((await bankConsent(hybrid, consentId)).consentStatus).toBe('Revoked');
  });

  it('a consent the bank ends early (Expired long before its ExpirationDateTime): expired at the sync, reauth, nothing more scheduled, one connectionExpired; reauth brings it back', async () => {
    const DAY_MS = 86_400_000;
    const client = await webhookClient(ts.baseUrl);
    const nationwide = ts.server.catalog.all().find((p) => p.name === 'Nationwide Open Banking');
    if (nationwide === undefined) throw new Error('no Nationwide');
    const { userId } = await client.mh.registerUser({ clientUserId: 'fapi-expired' });
    const { connectionId } = await connect(client.mh, userId, nationwide.id, 'user_ok');
    const conn = async (): Promise<Record<string, unknown>> => {
      const found = (await client.mh.getUserConnections({ userId })).data.find((x) => x.id === connectionId);
      if (found === undefined) throw new Error('no connection');
      return found as unknown as Record<string, unknown>;
    };
    const syncs = async (): Promise<{ fetchStatus: string }[]> => (await client.mh.getConnectionSyncs({ userId, connectionId })).data as unknown as { fetchStatus: string }[];
    const granted = Date.parse(String((await conn()).expiresAt));
    const consentId = String(((await ts.testDb.db.query<{ provider_ref: string }>('select provider_ref from connections where id = $1', [connectionId])).rows[0])?.provider_ref);
    await advanceClock(ts.baseUrl, 'P4D');
    await setBehaviour(ts.baseUrl, connectionId, 'user_expired');
    const syncFrom = await clockNow(ts.baseUrl);
    expect((await client.mh.syncUserConnection({ userId, connectionId })).data.status).toBe('error');
    const syncTo = await clockNow(ts.baseUrl);
    expect((await bankConsent(nationwide, consentId)).consentStatus).toBe('Expired');
    const c = await conn();
    expect(c).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired', nextSyncAt: null, remediation: { action: 'reauth' } });
    // The bank dates the expiry by its StatusUpdateDateTime (the sync), months before the ExpirationDateTime it granted.
    const expiredAt = Date.parse(String(c.expiresAt));
    expect(expiredAt).toBeGreaterThanOrEqual(syncFrom);
    expect(expiredAt).toBeLessThanOrEqual(syncTo);
    expect(granted - expiredAt).toBeGreaterThan(80 * DAY_MS);
    expect((await syncs()).at(0)).toMatchObject({ fetchStatus: 'credentials-error' });

    const attempts = (await syncs()).length;
    await advanceClock(ts.baseUrl, 'P2D');
    await runScheduler(ts.baseUrl);
    await advanceClock(ts.baseUrl, 'P2D');
    await runScheduler(ts.baseUrl);
    expect(await syncs()).toHaveLength(attempts);
    expect(await conn()).toMatchObject({ expiresAt: c.expiresAt, extendedStatus: 'expired' });
    const expiredEvents = ofConnection(await allEvents(ts.baseUrl, client), connectionId, 'connectionExpired');
    expect(expiredEvents).toHaveLength(1);
    expect(expiredEvents[0]?.payload).toMatchObject({ connectionId, expiredAt: c.expiresAt, tppConsent: false, remediation: { action: 'reauth' } });

    const url = await client.mh.getReauthAuthorizeUrlForCreatedUser({ userId, connectionId, state: 'st-rx', nonce: 'nn-rx' });
    expect((await runJourney(url, 'user_ok')).get('error')).toBeNull();
    const renewed = await conn();
    expect(renewed).toMatchObject({ status: 'ok', error: null, extendedStatus: null, remediation: { action: 'none' } });
    expect(Date.parse(String(renewed.expiresAt))).toBeGreaterThan(syncTo + 80 * DAY_MS);
    expect(renewed.nextSyncAt).not.toBeNull();
  });

  it('UK.OBIE.Reauthenticate is mfa_required with reauth', async () => {
    const user = await mh.registerUser({ clientUserId: 'fapi-mfa' });
    const { connectionId } = await connect(mh, user.userId, hybrid.id, 'user_mfa');
    await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'P1D' });
    await sandbox(ts.baseUrl, 'POST', '/sandbox/scheduler/run');
    const c = await connectionOf(user.userId, connectionId);
    expect(c.error).toBe('mfa_required');
    expect((c.remediation as { action?: string }).action).toBe('reauth');
  });

  it('a 429 with Retry-After is a rate-limited sync, not a failed one', async () => {
    const user = await mh.registerUser({ clientUserId: 'fapi-429' });
    const { connectionId } = await connect(mh, user.userId, hybrid.id, 'user_ratelimited');
    await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'P1D' });
    await sandbox(ts.baseUrl, 'POST', '/sandbox/scheduler/run');
    const c = await connectionOf(user.userId, connectionId);
    expect(c.status).toBe('ok');
    expect(typeof c.rateLimitedUntil).toBe('string');
    const syncs = (await mh.getConnectionSyncs({ userId: user.userId, connectionId })).data as unknown as { fetchStatus: string }[];
    expect(syncs.map((s) => s.fetchStatus)).toContain('rate-limited');
    expect(syncs.map((s) => s.fetchStatus)).not.toContain('error');
  });

  it('deleting the connection deletes the consent at the bank', async () => {
    const { userId, connectionId, consentId } = await connectHybrid();
    expect((await bankConsent(hybrid, consentId)).consentStatus).toBe('Authorised');
    await mh.deleteUserConnection({ userId, connectionId });
    expect((await bankConsent(hybrid, consentId)).consentStatus).toBe('Revoked');
  });
});
