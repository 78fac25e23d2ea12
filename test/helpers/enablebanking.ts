/**
 * Enable Banking providers as an operator configures them, pointed at the sandbox counterpart
 * (`<PUBLIC_URL>/sandbox/enablebanking`), and what a test needs to look at that counterpart the
 * way Enable Banking's own API shows it: application JWTs (good and deliberately bad ones) and
 * raw calls.
 */
import { createHash, generateKeyPairSync, type KeyObject, createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import type { CatalogEntry } from '../../src/providers/catalog.ts';
import type { EnableBankingSettings } from '../../src/providers/settings.ts';
import type { TestServer } from './server.ts';

/** A fresh RS256 application key (PKCS#8 PEM), as Enable Banking's control panel would have one generated. */
export function applicationKey(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export interface EbEntryOptions {
  name: string;
  applicationId: string;
  privateKey: string;
  aspsp?: { name: string; country: string };
  consentDays?: number | null;
  tppConsent?: boolean;
  accountTypes?: string[];
  settings?: Partial<EnableBankingSettings>;
}

export const SANDBOX_EB_PATH = '/sandbox/enablebanking';

/** A providers-file entry (as read) for the Enable Banking counterpart of the server at `publicUrl`. */
export function enableBankingEntry(urls: { publicUrl: string }, o: EbEntryOptions): CatalogEntry {
  const id = createHash('sha256').update(`test-enablebanking:${o.name}`).digest('hex').slice(0, 32);
  const enablebanking: EnableBankingSettings = {
    apiUrl: `${urls.publicUrl}${SANDBOX_EB_PATH}`,
    applicationId: o.applicationId,
    privateKey: o.privateKey,
    aspsp: o.aspsp ?? { name: 'Mooring Sandbox Bank', country: 'GB' },
    psuType: 'personal',
    ...o.settings,
  };
  return {
    id, name: o.name, type: 'api', bankRef: id, adapter: 'enablebanking',
    consentDays: o.consentDays === undefined ? 90 : o.consentDays, tppConsent: o.tppConsent ?? false, isBeta: false,
    accountTypes: (o.accountTypes ?? ['cash:current', 'savings']).map((name) => ({ name, beta: false })),
    userTypes: ['personal'], payments: [], baseUrl: enablebanking.apiUrl, origin: 'file', enablebanking,
  };
}

export interface JwtOptions {
  kid?: string;
  alg?: 'RS256' | 'PS256';
  typ?: string;
  iss?: string;
  aud?: string;
  /** Seconds since the epoch (real time). */
  iat?: number;
  exp?: number;
  key?: KeyObject | string;
}

/** An application JWT as Enable Banking documents it; each option bends one thing. */
export async function applicationJwt(applicationId: string, privateKey: string, o: JwtOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const iat = o.iat ?? now;
  const key = o.key === undefined ? createPrivateKey(privateKey) : typeof o.key === 'string' ? createPrivateKey(o.key) : o.key;
  return new SignJWT({})
    .setProtectedHeader({ typ: o.typ ?? 'JWT', alg: o.alg ?? 'RS256', kid: o.kid ?? applicationId })
    .setIssuer(o.iss ?? 'enablebanking.com')
    .setAudience(o.aud ?? 'api.enablebanking.com')
    .setIssuedAt(iat)
    .setExpirationTime(o.exp ?? iat + 3600)
    .sign(key);
}

export interface EbAnswer {
  status: number;
  body: Record<string, unknown>;
  location: string | null;
}

/** One call to the counterpart's API with an application JWT (or `jwt: null` for none). */
export async function ebCall(
  ts: TestServer,
  jwt: string | null,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<EbAnswer> {
  const res = await fetch(`${ts.baseUrl}${SANDBOX_EB_PATH}${path}`, {
    method,
    redirect: 'manual',
    headers: { ...(jwt === null ? {} : { authorization: `Bearer ${jwt}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed, location: res.headers.get('location') };
}

/** The session id the counterpart gave the authorisation a browser journey went through (read from the bank's own records). */
export async function sessionIdOfAuthorization(ts: TestServer, authorizationId: string): Promise<string> {
  const r = await ts.testDb.db.query<{ session_id: string | null }>('select session_id from sandbox_eb_sessions where id = $1', [authorizationId]);
  const id = r.rows[0]?.session_id;
  if (id === undefined || id === null) throw new Error(`authorisation ${authorizationId} has no session`);
  return id;
}

/** The authorisation id in a browser history that went through the counterpart's page. */
export function authorizationIdIn(history: string[]): string {
  const page = [...history].reverse().find((u) => u.includes(`${SANDBOX_EB_PATH}/authorize/`));
  const id = page === undefined ? undefined : new URL(page).pathname.split('/').at(-1);
  if (id === undefined) throw new Error(`the journey did not pass the Enable Banking page: ${history.join(' -> ')}`);
  return id;
}
