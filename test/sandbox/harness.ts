/**
 * A sandbox-bank server for tests: a small Fastify app with the sandbox banks on a real port, its own
 * fresh database, a movable domain clock, the sandbox catalog pointing at it, and Mooring's adapters.
 * Also drives the Open Banking browser journey the way a user's browser would.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import { expect } from 'vitest';
import type { MovableClock } from '../../src/clock.ts';
import { testClock } from '../helpers/time.ts';
import type { Db } from '../../src/db/db.ts';
import { sandboxCatalog, type Catalog, type CatalogEntry } from '../../src/providers/catalog.ts';
import type { ImplementedAdapterKind } from '../../src/providers/kinds.ts';
import type { FetchResult, JourneyStep, JsonObject, ProviderAdapters, ProviderError } from '../../src/providers/provider.ts';
import { createProviderAdapters } from '../../src/providers/registry.ts';
import { registerSandboxBanks, SandboxObBanks, sandboxMtlsUrl, sandboxOpenBankingSettings, startSandboxMtlsListener, type SandboxBankDeps } from '../../src/sandbox/banks/index.ts';
import type { SandboxPki } from '../../src/sandbox/pki.ts';
import { createSecretBox, decodeKey } from '../../src/crypto/secrets.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { testPki } from '../helpers/pki.ts';
import { TEST_ENCRYPTION_KEY } from '../helpers/server.ts';

export const SECRET = 'sandbox-test-secret';
export const CALLBACK_URL = 'https://mooring.example/journeys/callback';
export const DAY_MS = 86_400_000;

export interface Harness {
  app: FastifyInstance;
  db: Db;
  clock: MovableClock;
  catalog: Catalog;
  /** http://127.0.0.1:<port> */
  url: string;
  /** https://127.0.0.1:<port>: the Open Banking banks' mutual-TLS listener (token, consents, resources). */
  mtlsUrl: string;
  /** The sandbox PKI (Mooring's client certificate and signing key at the banks). */
  pki: SandboxPki;
  /** `<url>/connect/callback`, the one redirect URI the Open Banking banks register for Mooring. */
  callbackUrl: string;
  adapters: ProviderAdapters;
  provider(name: string): CatalogEntry;
  close(): Promise<void>;
}

/** How long user_slow's calls take in these tests. */
export const SLOW_CALL_MS = 1_000;

export async function startSandbox(opts: { timeoutMs?: number; slowCallMs?: number } = {}): Promise<Harness> {
  const t: TestDb = await createTestDb();
  const clock = testClock();
  const entries: CatalogEntry[] = [];
  // The catalog needs the port, which exists only after listening: the banks read it per request.
  const catalog: Catalog = { all: () => entries, get: (id) => entries.find((e) => e.id === id) };
  const app = Fastify({ logger: false });
  await app.register(formbody);
  const pki = testPki();
  const secrets = createSecretBox(decodeKey(TEST_ENCRYPTION_KEY) as Buffer);
  // The Open Banking banks need PUBLIC_URL and the mTLS URL, which exist only once both listen: set below.
  const banks = new SandboxObBanks({ db: t.db, secrets, clock, catalog, pki, publicUrl: '', mtlsUrl: '', slowCallMs: opts.slowCallMs ?? SLOW_CALL_MS });
  const deps: SandboxBankDeps = { db: t.db, clock, catalog, sandboxClientSecret: SECRET, publicUrl: '', slowCallMs: opts.slowCallMs ?? SLOW_CALL_MS, openBanking: banks };
  await registerSandboxBanks(app, deps);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  const mtls = await startSandboxMtlsListener({ deps, banks, host: '127.0.0.1', port: 0, logger: app.log, bodyLimitBytes: 100_000, trustProxy: false });
  banks.deps.publicUrl = url;
  deps.publicUrl = url;
  banks.deps.mtlsUrl = sandboxMtlsUrl(url, mtls.port);
  const urls = { publicUrl: url, mtlsUrl: banks.deps.mtlsUrl };
  entries.push(...sandboxCatalog(url).map((e) => (e.adapter === 'openbanking' ? { ...e, openbanking: sandboxOpenBankingSettings(pki, urls, e.bankRef) } : e)));
  const adapters = createProviderAdapters({ sandboxClientSecret: SECRET, timeoutMs: opts.timeoutMs ?? 10_000 });
  return {
    app,
    db: t.db,
    clock,
    catalog,
    url,
    mtlsUrl: banks.deps.mtlsUrl,
    pki,
    callbackUrl: `${url}/connect/callback`,
    adapters,
    provider(name) {
      const p = entries.find((e) => e.name === name);
      if (p === undefined) throw new Error(`no provider ${name}`);
      return p;
    },
    async close() {
      await adapters.close();
      await mtls.close();
      await app.close();
      await t.drop();
    },
  };
}

const unescapeHtml = (s: string): string =>
  s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Reads the login form as a browser would: where it posts, and its hidden fields. */
export function readForm(html: string, pageUrl: string): { action: string; hidden: Record<string, string>; inputs: string[] } {
  const form = /<form method="post" action="([^"]*)">/.exec(html);
  if (form === null) throw new Error('no form on the page');
  const hidden: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) hidden[m[1] as string] = unescapeHtml(m[2] as string);
  const inputs = [...html.matchAll(/<input [^>]*name="([^"]+)"/g)].map((m) => m[1] as string);
  return { action: new URL(unescapeHtml(form[1] as string), pageUrl).toString(), hidden, inputs };
}

export interface ObJourney {
  start: JourneyStep;
  /** Where the bank's login page was (after the redirects from the start URL). */
  loginUrl: string;
  loginPage: string;
  callback: URL;
  done: JourneyStep & { kind: 'done' };
}

/** A browser for one host: keeps cookies, follows redirects by hand (so the test sees each hop). */
export class Browser {
  readonly #cookies = new Map<string, string>();

  async go(url: string, init: RequestInit = {}): Promise<Response> {
    const cookie = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string> | undefined), ...(cookie === '' ? {} : { cookie }) } });
    for (const c of res.headers.getSetCookie()) {
      const [pair = ''] = c.split(';');
      const eq = pair.indexOf('=');
      this.#cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return res;
  }

  /** Follows redirects from `url` until a page answers, or until the next hop is `stopAt` (not fetched). */
  async follow(url: string, stopAt: string, init: RequestInit = {}): Promise<{ url: string; res: Response | null }> {
    let at = url;
    let res = await this.go(at, init);
    for (let hops = 0; hops < 10; hops += 1) {
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || location === null) return { url: at, res };
      at = new URL(location, at).toString();
      if (at.startsWith(stopAt)) return { url: at, res: null };
      res = await this.go(at);
    }
    throw new Error(`too many redirects from ${url}`);
  }
}

/**
 * The whole Open Banking connect journey as a browser runs it: start, follow the redirects to the
 * bank's login page, log in with `username`, follow the redirects back to the callback URL, complete.
 */
export async function connectOb(
  h: Harness,
  provider: CatalogEntry,
  username: string,
  opts: { consentExpiresAt?: Date | null; existingGrant?: JsonObject } = {},
): Promise<ObJourney> {
  const adapter = h.adapters.openbanking;
  const state = randomUUID();
  const consentExpiresAt = opts.consentExpiresAt === undefined ? new Date(h.clock.now().getTime() + 90 * DAY_MS) : opts.consentExpiresAt;
  const start = await adapter.startAuthorisation({
    provider, callbackUrl: h.callbackUrl, state, consentExpiresAt, ...(opts.existingGrant ? { existingGrant: opts.existingGrant } : {}),
  });
  if (start.kind !== 'redirect') throw new Error(`expected a redirect, got ${start.kind}`);
  const browser = new Browser();
  const page = await browser.follow(start.url, h.callbackUrl);
  expect(page.res?.status).toBe(200);
  const loginPage = (await page.res?.text()) ?? '';
  const form = readForm(loginPage, page.url);
  const answer = await browser.follow(form.action, h.callbackUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...form.hidden, username, password: 'any password', decision: 'approve' }).toString(),
  });
  expect(answer.res).toBeNull();
  const callback = new URL(answer.url);
  expect(`${callback.origin}${callback.pathname}`).toBe(h.callbackUrl);
  const done = await adapter.completeAuthorisation({ provider, pending: start.pending, input: Object.fromEntries(callback.searchParams), callbackUrl: h.callbackUrl });
  if (done.kind !== 'done') throw new Error(`expected done, got ${done.kind}`);
  return { start, loginUrl: page.url, loginPage, callback, done };
}

export function fetchData(
  h: Harness,
  kind: ImplementedAdapterKind,
  provider: CatalogEntry,
  grant: JsonObject,
  opts: { attended?: boolean; since?: Date | null } = {},
): Promise<FetchResult> {
  return h.adapters[kind].fetch({
    provider, grant, attended: opts.attended ?? false, since: opts.since ?? null, now: h.clock.now(),
    ...(opts.attended === true ? { customerIpAddress: '203.0.113.7' } : {}),
  });
}

/** The ProviderError kind a promise rejects with (fails the test if it resolves). */
export async function errorKind(p: Promise<unknown>): Promise<ProviderError['kind']> {
  try {
    await p;
  } catch (err) {
    const kind = (err as { kind?: unknown }).kind;
    if (typeof kind === 'string') return kind as ProviderError['kind'];
    throw err;
  }
  throw new Error('expected a ProviderError, but the call succeeded');
}

export const advanceDays = (h: Harness, days: number): void => h.clock.setOffsetMs(h.clock.offsetMs() + days * DAY_MS);

export async function declareOutage(h: Harness, provider: CatalogEntry, until: Date): Promise<void> {
  await h.db.query(
    `insert into provider_overrides (provider_id, outage_until) values ($1, $2)
     on conflict (provider_id) do update set outage_until = excluded.outage_until`,
    [provider.id, until],
  );
}

export async function retire(h: Harness, provider: CatalogEntry): Promise<void> {
  await h.db.query(
    `insert into provider_overrides (provider_id, retired_at) values ($1, $2)
     on conflict (provider_id) do update set retired_at = excluded.retired_at`,
    [provider.id, h.clock.now()],
  );
}
