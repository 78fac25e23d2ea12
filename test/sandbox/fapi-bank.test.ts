/**
 * The sandbox Open Banking banks as FAPI 1.0 Advanced banks (SPEC section 10, sandbox), at the
 * HTTP level with raw requests: this file acts as a client, careful or careless, with the sandbox
 * PKI's client certificate over mutual TLS and jose for client assertions and request objects.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, decodeJwt, importPKCS8, jwtVerify, SignJWT, UnsecuredJWT, type CryptoKey } from 'jose';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { fapiBankClient, type FapiBankClient, type RawAnswer } from '../helpers/fapi-client.ts';
import { testPki } from '../helpers/pki.ts';
import type { SandboxPki } from '../../src/sandbox/pki.ts';
import { MODELO_ID } from '../../src/providers/catalog.ts';
import { seedObConnections } from '../../bench/sync-seed.ts';
import { TEST_DATA_DIR } from '../helpers/pki.ts';

const SLUG = 'modelo';
const PERMISSIONS = ['ReadAccountsBasic', 'ReadAccountsDetail', 'ReadBalances', 'ReadTransactionsBasic', 'ReadTransactionsDetail'];

let ts: TestServer;
let pki: SandboxPki;
let signingKey: CryptoKey;
let issuer: string;
let mtls: string;
let aisp: string;
let callback: string;
/** Raw calls as Mooring's client (test/helpers/fapi-client.ts); its agent carries the client certificate. */
let bank: FapiBankClient;
let withoutCert: Agent;

/** A request over TLS to the mTLS listener, with the client certificate unless `agent` says otherwise. */
const mtlsRequest = (method: string, url: string, opts: { agent?: Agent; headers?: Record<string, string>; body?: string } = {}): Promise<RawAnswer> =>
  bank.call(method, url, opts);

const form = (fields: Record<string, string>): { headers: Record<string, string>; body: string } => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});

const clientAssertion = (aud: string): Promise<Record<string, string>> => bank.clientAssertion({ aud });

const token = (fields: Record<string, string>, agent?: Agent): Promise<RawAnswer> => bank.token(fields, agent === undefined ? {} : { agent });

async function clientToken(): Promise<string> {
  const r = await token({ grant_type: 'client_credentials', scope: 'accounts' });
  expect(r.status, r.text).toBe(200);
  return String(r.json().access_token);
}

async function createConsent(): Promise<string> {
  const r = await mtlsRequest('POST', `${aisp}/account-access-consents`, {
    headers: { authorization: `Bearer ${await clientToken()}`, 'content-type': 'application/json', 'x-fapi-financial-id': '0015800001041REABC' },
    body: JSON.stringify({ Data: { Permissions: PERMISSIONS, ExpirationDateTime: new Date(Date.now() + 30 * 86_400_000).toISOString() }, Risk: {} }),
  });
  expect(r.status, r.text).toBe(201);
  return String((r.json().Data as { ConsentId: string }).ConsentId);
}

async function consentStatus(consentId: string): Promise<string> {
  const r = await mtlsRequest('GET', `${aisp}/account-access-consents/${consentId}`, { headers: { authorization: `Bearer ${await clientToken()}` } });
  expect(r.status, r.text).toBe(200);
  return String((r.json().Data as { Status: string }).Status);
}

interface RequestObjectOptions { consentId: string; verifier?: string | null; exp?: number; sign?: boolean; hybrid?: boolean }

async function requestObject(o: RequestObjectOptions): Promise<{ jwt: string; state: string; nonce: string }> {
  const state = randomUUID();
  const nonce = randomUUID();
  const now = Math.floor(Date.now() / 1000);
  const intent = { value: o.consentId, essential: true };
  const claims: Record<string, unknown> = {
    iss: 'mooring', aud: issuer, client_id: 'mooring', redirect_uri: callback,
    ...(o.hybrid === true ? { response_type: 'code id_token' } : { response_type: 'code', response_mode: 'jwt' }),
    scope: 'openid accounts', state, nonce, nbf: now - 10, exp: o.exp ?? now + 300,
    claims: { id_token: { openbanking_intent_id: intent }, userinfo: { openbanking_intent_id: intent } },
  };
  if (o.verifier !== null) {
    claims.code_challenge = createHash('sha256').update(o.verifier ?? '').digest('base64url');
    claims.code_challenge_method = 'S256';
  }
  const jwt = o.sign === false
    ? new UnsecuredJWT(claims).encode()
    : await new SignJWT(claims).setProtectedHeader({ alg: 'PS256', kid: pki.signingKeyId }).sign(signingKey);
  return { jwt, state, nonce };
}

/** A browser's cookie jar, good enough for one host. */
class Jar {
  readonly #cookies = new Map<string, string>();
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair = ''] = c.split(';');
      const eq = pair.indexOf('=');
      this.#cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  }
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

async function browse(jar: Jar, url: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string> | undefined), cookie: jar.header() } });
  jar.take(res);
  return res;
}

const authUrl = (jwt: string, responseType = 'code'): string =>
  `${issuer}/auth?${new URLSearchParams({ client_id: 'mooring', response_type: responseType, scope: 'openid accounts', request: jwt }).toString()}`;

/** Where the bank sends the browser for this request object: its login page, or an error. */
async function authorize(jwt: string, jar = new Jar(), responseType = 'code'): Promise<{ login: string | null; error: string | null; status: number }> {
  const res = await browse(jar, authUrl(jwt, responseType));
  const location = res.headers.get('location');
  if (res.status === 303 && location !== null && location.includes('/login/')) return { login: new URL(location, issuer).toString(), error: null, status: res.status };
  if (location !== null && location.startsWith(callback)) {
    const params = new URL(location).searchParams;
    const response = params.get('response');
    return { login: null, error: response === null ? params.get('error') : String(decodeJwt(response).error), status: res.status };
  }
  return { login: null, error: await res.text(), status: res.status };
}

/** The customer logs in as `username` and approves: the callback URL's JARM response. */
async function approve(jwt: string, username: string): Promise<string> {
  const jar = new Jar();
  const { login } = await authorize(jwt, jar);
  expect(login).not.toBeNull();
  const page = await browse(jar, login as string);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('Approve');
  const posted = await browse(jar, login as string, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password: 'anything', decision: 'approve' }).toString(),
  });
  expect(posted.status).toBe(303);
  const resumed = await browse(jar, new URL(posted.headers.get('location') as string, issuer).toString());
  expect(resumed.status).toBe(303);
  const location = resumed.headers.get('location') as string;
  expect(location.startsWith(callback)).toBe(true);
  const response = new URL(location).searchParams.get('response');
  expect(response).not.toBeNull();
  return response as string;
}

/** A consent authorised by `username`, exchanged for certificate-bound tokens. */
async function connect(username: string): Promise<{ consentId: string; accessToken: string; refreshToken: string; idToken: string; nonce: string }> {
  const consentId = await createConsent();
  const verifier = randomBytes(32).toString('base64url');
  const { jwt, state, nonce } = await requestObject({ consentId, verifier });
  const response = await approve(jwt, username);
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  const { payload } = await jwtVerify(response, jwks, { issuer, audience: 'mooring' });
  expect(payload.state).toBe(state);
  const exchanged = await token({ grant_type: 'authorization_code', code: String(payload.code), redirect_uri: callback, code_verifier: verifier });
  expect(exchanged.status, exchanged.text).toBe(200);
  const body = exchanged.json();
  return { consentId, accessToken: String(body.access_token), refreshToken: String(body.refresh_token), idToken: String(body.id_token), nonce };
}

const accounts = (accessToken: string, agent?: Agent): Promise<RawAnswer> =>
  mtlsRequest('GET', `${aisp}/accounts`, { headers: { authorization: `Bearer ${accessToken}` }, ...(agent === undefined ? {} : { agent }) });

beforeAll(async () => {
  ts = await startTestServer();
  pki = testPki();
  signingKey = await importPKCS8(pki.signingKey, 'PS256');
  issuer = `${ts.baseUrl}/sandbox/ob/${SLUG}`;
  mtls = `${ts.server.sandboxMtlsUrl ?? ''}/sandbox/ob/${SLUG}`;
  aisp = `${mtls}/open-banking/v3.1/aisp`;
  callback = `${ts.baseUrl}/connect/callback`;
  bank = await fapiBankClient(pki, { publicUrl: ts.baseUrl, mtlsUrl: ts.server.sandboxMtlsUrl ?? '' }, SLUG);
  withoutCert = new Agent({ connect: { ca: pki.caCert } });
});

afterAll(async () => {
  await bank.close();
  await withoutCert.close();
  await ts.stop();
});

describe('a sandbox FAPI bank', () => {
  it('advertises its mutual-TLS endpoints, PS256, JARM and PKCE in its discovery document', async () => {
    const res = await fetch(`${issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const d = (await res.json()) as Record<string, unknown>;
    expect(d.issuer).toBe(issuer);
    expect(d.mtls_endpoint_aliases).toMatchObject({ token_endpoint: `${mtls}/token` });
    expect(d.tls_client_certificate_bound_access_tokens).toBe(true);
    expect(d.request_object_signing_alg_values_supported).toEqual(['PS256']);
    expect(d.response_modes_supported).toContain('jwt');
    expect(d.code_challenge_methods_supported).toEqual(['S256']);
    expect(d.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['private_key_jwt', 'tls_client_auth']));
  });

  it('refuses the token endpoint without a client certificate, on either port', async () => {
    const noCert = await token({ grant_type: 'client_credentials', scope: 'accounts' }, withoutCert);
    expect(noCert.status).toBe(401);
    expect(noCert.json().error).toBe('invalid_client');
    const plain = await fetch(`${issuer}/token`, { method: 'POST', ...form({ grant_type: 'client_credentials', scope: 'accounts', ...(await clientAssertion(`${issuer}/token`)) }) });
    expect(plain.status).toBe(401);
    expect(((await plain.json()) as { error: string }).error).toBe('invalid_client');
  });

  it('refuses a client certificate from a CA it does not trust, whatever its subject', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'untrusted-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '1',
        '-subj', '/O=Mooring/CN=mooring-sandbox-client'], { cwd: dir, stdio: 'ignore' });
      const stranger = new Agent({ connect: { ca: pki.caCert, cert: fs.readFileSync(path.join(dir, 'c.pem')), key: fs.readFileSync(path.join(dir, 'k.pem')) } });
      const tls = await mtlsRequest('POST', `${mtls}/token`, { ...form({ grant_type: 'client_credentials', scope: 'accounts', client_id: 'mooring-tls' }), agent: stranger });
      expect(tls.status).toBe(401);
      expect(tls.json().error).toBe('invalid_client');
      const withKey = await token({ grant_type: 'client_credentials', scope: 'accounts' }, stranger);
      expect(withKey.status).toBe(401);
      await stranger.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives a certificate-bound client-credentials token to private_key_jwt and to tls_client_auth over mutual TLS', async () => {
    const r = await token({ grant_type: 'client_credentials', scope: 'accounts' });
    expect(r.status, r.text).toBe(200);
    expect(r.json()).toMatchObject({ token_type: 'Bearer', scope: 'accounts' });
    const tls = await mtlsRequest('POST', `${mtls}/token`, form({ grant_type: 'client_credentials', scope: 'accounts', client_id: 'mooring-tls' }));
    expect(tls.status, tls.text).toBe(200);
    // Tokens are cached nowhere (once: the OpenID provider's own header), nor is a refusal.
    expect(r.headers['cache-control']).toBe('no-store');
    expect(tls.headers['cache-control']).toBe('no-store');
    const refused = await token({ grant_type: 'client_credentials', scope: 'accounts' }, withoutCert);
    expect(refused.status).toBe(401);
    expect(refused.headers['cache-control']).toBe('no-store');
  });

  it('creates and reads an account-access consent with a client-credentials token', async () => {
    const consentId = await createConsent();
    expect(await consentStatus(consentId)).toBe('AwaitingAuthorisation');
    const read = await mtlsRequest('GET', `${aisp}/account-access-consents/${consentId}`, { headers: { authorization: `Bearer ${await clientToken()}` } });
    expect(read.status, read.text).toBe(200);
    expect(read.headers['cache-control']).toBe('no-store');
    const unknown = await mtlsRequest('GET', `${aisp}/account-access-consents/aac-nope`, { headers: { authorization: `Bearer ${await clientToken()}` } });
    expect(unknown.status).toBe(400);
    expect(unknown.headers['cache-control']).toBe('no-store');
    expect(unknown.json()).toMatchObject({ Errors: [{ ErrorCode: 'UK.OBIE.Resource.NotFound' }] });
    const noToken = await mtlsRequest('GET', `${aisp}/account-access-consents/${consentId}`);
    expect(noToken.status).toBe(401);
  });

  it('refuses authorization requests with an unsigned or expired request object, or without PKCE', async () => {
    const consentId = await createConsent();
    const unsigned = await authorize((await requestObject({ consentId, verifier: 'v'.repeat(43), sign: false })).jwt);
    expect(unsigned.login).toBeNull();
    expect(unsigned.error).toBe('invalid_request_object');
    const expired = await authorize((await requestObject({ consentId, verifier: 'v'.repeat(43), exp: Math.floor(Date.now() / 1000) - 60 })).jwt);
    expect(expired.login).toBeNull();
    expect(expired.error).toBe('invalid_request_object');
    const noPkce = await authorize((await requestObject({ consentId, verifier: null })).jwt);
    expect(noPkce.login).toBeNull();
    expect(noPkce.error).toBe('invalid_request');
  });

  it('runs a code + JARM journey to a certificate-bound access token that reads the accounts', async () => {
    const c = await connect('user_ok');
    expect(await consentStatus(c.consentId)).toBe('Authorised');
    const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
    const { payload } = await jwtVerify(c.idToken, jwks, { issuer, audience: 'mooring' });
    expect(payload.openbanking_intent_id).toBe(c.consentId);
    expect(payload.nonce).toBe(c.nonce);

    const unbound = await accounts(c.accessToken, withoutCert);
    expect(unbound.status).toBe(401);
    // Read/Write API profile: a refused token gets a 401 without an error body.
    expect(unbound.text).toBe('');
    expect(unbound.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token"/);
    const res = await accounts(c.accessToken);
    expect(res.status, res.text).toBe(200);
    expect(res.headers['x-fapi-interaction-id']).toBeDefined();
    expect(res.headers['cache-control']).toBe('no-store');
    const list = (res.json().Data as { Account: { AccountId: string }[] }).Account;
    expect(list.length).toBe(2);
    const id = list[0]?.AccountId ?? '';
    const balances = await mtlsRequest('GET', `${aisp}/accounts/${id}/balances`, { headers: { authorization: `Bearer ${c.accessToken}` } });
    expect(balances.status, balances.text).toBe(200);
    const tx = await mtlsRequest('GET', `${aisp}/accounts/${id}/transactions?fromBookingDateTime=2020-01-01T00:00:00Z`, {
      headers: { authorization: `Bearer ${c.accessToken}`, 'x-fapi-interaction-id': 'abc-123' },
    });
    expect(tx.status, tx.text).toBe(200);
    expect(tx.headers['x-fapi-interaction-id']).toBe('abc-123');
    // The Read/Write API: a time zone in the filter is ignored; an unknown id is a 400, not a 404.
    const zoned = await mtlsRequest('GET', `${aisp}/accounts/${id}/transactions?fromBookingDateTime=${encodeURIComponent('2020-01-01T00:00:00+05:00')}`, {
      headers: { authorization: `Bearer ${c.accessToken}` },
    });
    expect(zoned.json().Data).toEqual(tx.json().Data);
    const unknown = await mtlsRequest('GET', `${aisp}/accounts/nope/balances`, { headers: { authorization: `Bearer ${c.accessToken}` } });
    expect(unknown.status).toBe(400);
    expect(unknown.json()).toMatchObject({ Errors: [{ ErrorCode: 'UK.OBIE.Resource.NotFound' }] });

    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: c.refreshToken });
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(refreshed.json().refresh_token).not.toBe(c.refreshToken);
    const refreshedAccess = String(refreshed.json().access_token);
    expect((await accounts(refreshedAccess)).status).toBe(200);
    // A rotated refresh token used again is a replay: refused, and the whole grant is revoked.
    const reused = await token({ grant_type: 'refresh_token', refresh_token: c.refreshToken });
    expect(reused.json().error).toBe('invalid_grant');
    expect((await accounts(refreshedAccess)).status).toBe(401);
  });

  it('sends access_denied back when the customer cancels, and the consent is Rejected', async () => {
    const consentId = await createConsent();
    const { jwt } = await requestObject({ consentId, verifier: 'w'.repeat(43) });
    const jar = new Jar();
    const { login } = await authorize(jwt, jar);
    const posted = await browse(jar, login as string, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'decision=cancel',
    });
    const resumed = await browse(jar, new URL(posted.headers.get('location') as string, issuer).toString());
    const response = new URL(resumed.headers.get('location') as string).searchParams.get('response') as string;
    expect(decodeJwt(response).error).toBe('access_denied');
    expect(await consentStatus(consentId)).toBe('Rejected');
  });

  it('refuses resources once the customer revokes at the bank, and the consent says Revoked', async () => {
    const c = await connect('user_revoked');
    expect((await accounts(c.accessToken)).status).toBe(200);
    const refused = await accounts(c.accessToken);
    expect(refused.status).toBe(403);
    expect(refused.json()).toMatchObject({ Errors: [{ ErrorCode: 'UK.OBIE.Resource.InvalidConsentStatus' }] });
    expect(await consentStatus(c.consentId)).toBe('Revoked');
    expect((await token({ grant_type: 'refresh_token', refresh_token: c.refreshToken })).json().error).toBe('invalid_grant');
  });

  it('asks for the customer on an unattended call of user_mfa', async () => {
    const c = await connect('user_mfa');
    const r = await accounts(c.accessToken);
    expect(r.status).toBe(403);
    expect(r.json()).toMatchObject({ Errors: [{ ErrorCode: 'UK.OBIE.Reauthenticate' }] });
    const attended = await mtlsRequest('GET', `${aisp}/accounts`, { headers: { authorization: `Bearer ${c.accessToken}`, 'x-fapi-customer-ip-address': '203.0.113.9' } });
    expect(attended.status).toBe(200);
  });

  it('deletes a consent (204), after which its access token is refused', async () => {
    const c = await connect('user_ok');
    const del = await mtlsRequest('DELETE', `${aisp}/account-access-consents/${c.consentId}`, { headers: { authorization: `Bearer ${await clientToken()}` } });
    expect(del.status).toBe(204);
    expect(await consentStatus(c.consentId)).toBe('Revoked');
    const r = await accounts(c.accessToken);
    expect(r.status).toBe(403);
  });

  it('accepts the grants the sync benchmark seeds in SQL (bench/sync-seed.ts)', async () => {
    const db = ts.server.db;
    await seedObConnections(db as unknown as Parameters<typeof seedObConnections>[0], { providerIds: [MODELO_ID], count: 1, prefix: 'seed-', dataDir: TEST_DATA_DIR });
    const grant = (await db.query<{ provider_grant: { accessToken: string; refreshToken: string; consentId: string } }>(
      "select provider_grant from connections where id like '%:seed-1'",
    )).rows[0]?.provider_grant;
    expect(grant).toBeDefined();
    const res = await accounts(grant?.accessToken ?? '');
    expect(res.status, res.text).toBe(200);
    expect((await accounts(grant?.accessToken ?? '', withoutCert)).status).toBe(401);
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: grant?.refreshToken ?? '' });
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(await consentStatus(grant?.consentId ?? '')).toBe('Authorised');
  });

  it('answers a hybrid (code id_token) request in the fragment, with an ID token carrying c_hash, s_hash and the intent', async () => {
    const consentId = await createConsent();
    const verifier = randomBytes(32).toString('base64url');
    const { jwt, state, nonce } = await requestObject({ consentId, verifier, hybrid: true });
    const jar = new Jar();
    const { login } = await authorize(jwt, jar, 'code id_token');
    expect(login).not.toBeNull();
    const posted = await browse(jar, login as string, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'user_ok', decision: 'approve' }).toString(),
    });
    const resumed = await browse(jar, new URL(posted.headers.get('location') as string, issuer).toString());
    const location = new URL(resumed.headers.get('location') as string);
    expect(`${location.origin}${location.pathname}`).toBe(callback);
    const fragment = new URLSearchParams(location.hash.slice(1));
    expect(fragment.get('state')).toBe(state);
    const { payload } = await jwtVerify(fragment.get('id_token') ?? '', createRemoteJWKSet(new URL(`${issuer}/jwks`)), { issuer, audience: 'mooring' });
    expect(payload).toMatchObject({ nonce, openbanking_intent_id: consentId });
    expect(payload.c_hash).toBeDefined();
    expect(payload.s_hash).toBeDefined();
    const exchanged = await token({ grant_type: 'authorization_code', code: fragment.get('code') ?? '', redirect_uri: callback, code_verifier: verifier });
    expect(exchanged.status, exchanged.text).toBe(200);
  });
});
