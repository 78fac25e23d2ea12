/**
 * Raw-HTTP helpers for API tests: a registered client that keeps its secret (for hand-made token
 * requests) alongside the official Moneyhub client, client_credentials tokens, JSON calls, and a
 * connect journey that answers the new connection id.
 */
import { officialClient, runJourney, type MoneyhubClient } from './moneyhub.ts';

/** Every REST scope of SPEC section 2. */
export const ALL_API_SCOPES = 'user:create user:read user:update user:delete auth_requests:read auth_requests:write accounts:read accounts:write:all transactions:read:all webhooks:read webhooks:write';
export const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';
export const DAY_MS = 86_400_000;

export interface ApiClient {
  clientId: string;
  clientSecret: string;
  mh: MoneyhubClient;
}

/** Registers a client_secret_basic client (with `extra` metadata, e.g. `scope`) and builds the official client for it. */
export async function apiClient(baseUrl: string, extra: Record<string, unknown> = {}): Promise<ApiClient> {
  const { mh, clientId, clientSecret } = await officialClient(baseUrl, 'client_secret_basic', { client_name: 'API test app', ...extra });
  if (clientSecret === '') throw new Error('registration answered no client_secret');
  return { clientId, clientSecret, mh };
}

export interface Res {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  body: unknown;
}

async function toRes(r: Response): Promise<Res> {
  const text = await r.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: r.status, headers: r.headers, text, body };
}

/** Asks the token endpoint directly (client_secret_basic). */
export async function requestToken(baseUrl: string, client: Pick<ApiClient, 'clientId' | 'clientSecret'>, params: Record<string, string>): Promise<Res> {
  const basic = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64');
  const r = await fetch(`${baseUrl}/oidc/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...params }).toString(),
  });
  return toRes(r);
}

/** A client_credentials access token with `scope` (and `sub` when given); throws unless the token endpoint agrees. */
export async function accessToken(baseUrl: string, client: Pick<ApiClient, 'clientId' | 'clientSecret'>, scope: string, sub?: string): Promise<string> {
  const res = await requestToken(baseUrl, client, { scope, ...(sub !== undefined ? { sub } : {}) });
  const body = res.body as { access_token?: string } | undefined;
  if (res.status !== 200 || typeof body?.access_token !== 'string') throw new Error(`token request failed: ${res.status} ${res.text}`);
  return body.access_token;
}

export interface CallOptions {
  token?: string;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent verbatim (with contentType, default application/json). */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

/** One HTTP call to the server; `path` is appended to baseUrl verbatim (so it may carry raw escapes). */
export async function call(baseUrl: string, method: string, path: string, opts: CallOptions = {}): Promise<Res> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.json !== undefined) body = JSON.stringify(opts.json);
  if (opts.raw !== undefined) body = opts.raw;
  if (body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  return toRes(await fetch(`${baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) }));
}

/** Runs a connect journey in the browser for one of the client's users; answers the new connection id. */
export async function connectBank(client: ApiClient, userId: string, bankId = MODELO_ID, username = 'user_ok'): Promise<string> {
  const state = `state-${Math.random().toString(36).slice(2)}`;
  const nonce = `nonce-${Math.random().toString(36).slice(2)}`;
  const url = await client.mh.getAuthorizeUrlForCreatedUser({ bankId, userId, state, nonce });
  const callback = await runJourney(url, username);
  if (callback.get('code') === null) throw new Error(`the connect journey returned no code: ${callback.toString()}`);
  const tokens = await client.mh.exchangeCodeForTokens({
    paramsFromCallback: { code: callback.get('code'), state: callback.get('state') },
    localParams: { state, nonce, sub: userId },
  });
  const connectionId = tokens.claims()['mh:con_id'];
  if (typeof connectionId !== 'string') throw new Error('the ID token carries no mh:con_id');
  return connectionId;
}
