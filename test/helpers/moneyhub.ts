/** Builds the official Moneyhub client against a test server, for one client-authentication method. */
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { Moneyhub } from '@mft/moneyhub-api-client';
import { ADMIN_TOKEN, registerClient } from './server.ts';
import { Browser, type Page } from './browser.ts';

export const REDIRECT_URI = 'http://127.0.0.1:1/callback';
export type AuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
export type MoneyhubClient = Awaited<ReturnType<typeof Moneyhub>>;

export interface OfficialClient {
  mh: MoneyhubClient;
  clientId: string;
  /** The secret registration answered (empty for private_key_jwt clients). */
  clientSecret: string;
}

/** What the official client rejects with on a non-2xx answer (it copies the body's code and message). */
export interface HttpError {
  response?: { statusCode: number; headers: Record<string, string | string[] | undefined>; body?: string };
  error?: string;
  error_description?: string;
}

/** Answers the error a call is expected to fail with. */
export async function rejection(p: Promise<unknown>): Promise<HttpError> {
  try {
    await p;
  } catch (err) {
    return err as HttpError;
  }
  throw new Error('expected the call to fail');
}

export async function officialClient(baseUrl: string, method: AuthMethod, extra: Record<string, unknown> = {}): Promise<OfficialClient> {
  let privateJwk: JWK | null = null;
  let publicJwk: JWK | null = null;
  if (method === 'private_key_jwt') {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = `test-${Math.random().toString(36).slice(2)}`;
    privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
    publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  }
  const requestObjectAlg = method === 'private_key_jwt' ? 'RS256' : 'HS256';
  const reg = await registerClient(baseUrl, {
    client_name: `Test app (${method})`,
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: method,
    request_object_signing_alg: requestObjectAlg,
    id_token_signed_response_alg: 'RS256',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    ...(publicJwk !== null ? { jwks: { keys: [publicJwk] } } : {}),
    ...extra,
  });
  const mh = await Moneyhub({
    identityServiceUrl: baseUrl,
    resourceServerUrl: `${baseUrl}/v2.0`,
    options: { timeout: 30_000 },
    client: {
      client_id: reg.client_id,
      client_secret: reg.client_secret ?? '',
      token_endpoint_auth_method: method,
      id_token_signed_response_alg: 'RS256',
      request_object_signing_alg: requestObjectAlg,
      redirect_uri: REDIRECT_URI,
      response_type: 'code',
      keys: privateJwk !== null ? [privateJwk] : [],
    },
  } as Parameters<typeof Moneyhub>[0]);
  return { mh, clientId: reg.client_id, clientSecret: reg.client_secret ?? '' };
}

/** The official client for an already registered client_secret_basic client (e.g. on another server over the same database). */
export function officialClientFor(baseUrl: string, client: { clientId: string; clientSecret: string }): Promise<MoneyhubClient> {
  return Moneyhub({
    identityServiceUrl: baseUrl,
    resourceServerUrl: `${baseUrl}/v2.0`,
    options: { timeout: 30_000 },
    client: {
      client_id: client.clientId,
      client_secret: client.clientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
      request_object_signing_alg: 'HS256',
      redirect_uri: REDIRECT_URI,
      response_type: 'code',
      keys: [],
    },
  } as Parameters<typeof Moneyhub>[0]);
}

export const atRedirect = (url: string): boolean => url.startsWith(REDIRECT_URI);

/** What the user does at each kind of provider page in a connect journey. */
export async function actAtProvider(browser: Browser, page: Page, username: string, input: Record<string, string> = {}): Promise<Page> {
  let current = page;
  for (let step = 0; step < 5 && current.location === null; step += 1) {
    if (current.html.includes('name="password"') && current.html.includes('decision')) {
      current = await browser.submit(current, { username, password: 'any-password' }, { button: 'approve', stopAt: atRedirect });
    } else if (current.html.includes('name="password"')) {
      current = await browser.submit(current, { username, password: 'any-password' }, { stopAt: atRedirect });
    } else if (current.html.includes('name="otp"')) {
      current = await browser.submit(current, { otp: input.otp ?? '123456' }, { stopAt: atRedirect });
    } else if (current.html.includes('name="postcode"')) {
      current = await browser.submit(current, { houseNumber: '10', postcode: 'SW1A 1AA', ...input }, { stopAt: atRedirect });
    } else if (current.html.includes('name="registration"')) {
      current = await browser.submit(current, { registration: 'AB12 CDE', ...input }, { stopAt: atRedirect });
    } else {
      throw new Error(`unexpected page ${current.url} (${current.status}) after ${browser.history.join(' -> ')}:\n${current.html.slice(0, 800)}`);
    }
  }
  return current;
}

/**
 * Runs a whole browser journey from an authorisation URL: Mooring's consent page (allow), then the
 * provider's pages, until the redirect back to the client. Answers the callback's query parameters.
 */
export async function runJourney(url: string, username = 'user_ok', input: Record<string, string> = {}): Promise<URLSearchParams> {
  const browser = new Browser();
  const consent = await browser.follow(url, atRedirect);
  if (consent.location !== null && atRedirect(consent.location)) return new URL(consent.location).searchParams;
  const afterConsent = await browser.submit(consent, {}, { button: 'allow', stopAt: atRedirect });
  const end = afterConsent.location !== null && atRedirect(afterConsent.location) ? afterConsent : await actAtProvider(browser, afterConsent, username, input);
  if (end.location === null || !atRedirect(end.location)) throw new Error(`journey did not return to the client: ${end.url} ${end.status}\n${end.html.slice(0, 800)}`);
  return new URL(end.location).searchParams;
}

/** Connects `userId` to the provider `bankId` through the browser journey as `username`; answers the connection id. */
export async function connect(mh: MoneyhubClient, userId: string, bankId: string, username = 'user_ok', opts: { enableAsync?: boolean; input?: Record<string, string> } = {}): Promise<{ connectionId: string; syncId: string | undefined }> {
  const state = `s-${Math.random().toString(36).slice(2)}`;
  const nonce = `n-${Math.random().toString(36).slice(2)}`;
  const url = await mh.getAuthorizeUrlForCreatedUser({ bankId, userId, state, nonce, ...(opts.enableAsync === true ? { enableAsync: true } : {}) });
  const callback = await runJourney(url, username, opts.input);
  if (callback.get('error') !== null) throw new Error(`journey failed: ${callback.get('error')} ${callback.get('error_description') ?? ''}`);
  const tokens = await mh.exchangeCodeForTokens({ paramsFromCallback: { code: callback.get('code'), state: callback.get('state') }, localParams: { state, nonce, sub: userId } });
  const claims = tokens.claims();
  return { connectionId: claims['mh:con_id'] as string, syncId: claims['mh:sync'] as string | undefined };
}

/** Calls the sandbox control API with the admin token. */
export async function sandbox(baseUrl: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
