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
import { registerSandboxBanks } from '../../src/sandbox/banks/index.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

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
  await registerSandboxBanks(app, { db: t.db, clock, catalog, sandboxClientSecret: SECRET, slowCallMs: opts.slowCallMs ?? SLOW_CALL_MS, redirectUriAllowed: (uri) => uri === CALLBACK_URL });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  entries.push(...sandboxCatalog(url));
  return {
    app,
    db: t.db,
    clock,
    catalog,
    url,
    adapters: createProviderAdapters({ sandboxClientSecret: SECRET, timeoutMs: opts.timeoutMs ?? 10_000 }),
    provider(name) {
      const p = entries.find((e) => e.name === name);
      if (p === undefined) throw new Error(`no provider ${name}`);
      return p;
    },
    async close() {
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
  loginPage: string;
  callback: URL;
  done: JourneyStep & { kind: 'done' };
}

/**
 * The whole Open Banking connect journey: start, follow the redirect to the bank's login page, log in
 * with `username`, follow the 303 back to the callback URL, complete.
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
    provider, callbackUrl: CALLBACK_URL, state, consentExpiresAt, ...(opts.existingGrant ? { existingGrant: opts.existingGrant } : {}),
  });
  if (start.kind !== 'redirect') throw new Error(`expected a redirect, got ${start.kind}`);
  const page = await fetch(start.url);
  expect(page.status).toBe(200);
  const loginPage = await page.text();
  const form = readForm(loginPage, start.url);
  const answer = await fetch(form.action, {
    method: 'POST',
    body: new URLSearchParams({ ...form.hidden, username, password: 'any password', decision: 'approve' }),
    redirect: 'manual',
  });
  expect(answer.status).toBe(303);
  const callback = new URL(answer.headers.get('location') ?? '');
  expect(`${callback.origin}${callback.pathname}`).toBe(CALLBACK_URL);
  expect(callback.searchParams.get('state')).toBe(state);
  const done = await adapter.completeAuthorisation({ provider, pending: start.pending, input: Object.fromEntries(callback.searchParams), callbackUrl: CALLBACK_URL });
  if (done.kind !== 'done') throw new Error(`expected done, got ${done.kind}`);
  return { start, loginPage, callback, done };
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
