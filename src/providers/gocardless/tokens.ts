/**
 * The GoCardless token pair (`POST /token/new/` with the secret pair, `POST /token/refresh/`),
 * shared by every Mooring process through the database (sealed at rest) with an in-process cache
 * in front: GoCardless allows `/token/new/` 100 times an hour, so the pair is issued once and
 * refreshed before the access token expires, re-issued only when the refresh token nears its end
 * or GoCardless refuses the pair. A lease taken by compare-and-set lets one process renew it while
 * the others wait for the result. Lifetimes are GoCardless's, in real time (never the domain clock).
 */
import type { SecretBox } from '../../crypto/secrets.ts';
import type { Queryable } from '../../db/db.ts';
import type { CatalogEntry } from '../catalog.ts';
import { callProvider, checkShape, HttpStatusFailure } from '../http.ts';
import { ProviderError } from '../provider.ts';
import type { GoCardlessSettings } from '../settings.ts';
import { goCardlessTokensRepository } from './repository.ts';
import { TokenPair, TokenRefresh } from './schemas.ts';

/** An access token is renewed this long before it expires (a sync's calls must not outlive it). */
export const ACCESS_MARGIN_MS = 5 * 60_000;
/** The pair is re-issued this long before the refresh token expires. */
export const REFRESH_MARGIN_MS = 60 * 60_000;
/** How long one process may hold the renewal lease (longer than a token call may take). */
const LEASE_MS = 30_000;
const WAIT_STEP_MS = 100;

interface Pair {
  secretId: string;
  access: string;
  accessExpiresAt: number;
  refresh: string;
  refreshExpiresAt: number;
}

export interface GoCardlessTokensOptions {
  /** Where the pair is shared; absent: this process only (an in-memory store). */
  db?: Queryable;
  secrets?: SecretBox;
  timeoutMs: number;
  realNow: () => number;
}

export const tokenContext = (providerId: string): string => `gocardless-token:${providerId}`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The persistence of the pair: the database (sealed) or, without one, this process's memory. */
interface PairStore {
  read(providerId: string): Promise<{ pair: Pair | null; raw: string | null }>;
  claim(providerId: string, nowMs: number): Promise<boolean>;
  write(providerId: string, pair: Pair, nowMs: number): Promise<string>;
  release(providerId: string): Promise<void>;
  forget(providerId: string, raw: string): Promise<void>;
}

function databaseStore(db: Queryable, secrets: SecretBox): PairStore {
  const repo = goCardlessTokensRepository(db);
  return {
    async read(providerId) {
      const row = await repo.find(providerId);
      if (row?.sealed == null) return { pair: null, raw: null };
      try {
        return { pair: JSON.parse(secrets.open(row.sealed, tokenContext(providerId))) as Pair, raw: row.sealed };
      } catch {
        return { pair: null, raw: row.sealed }; // sealed under a key no longer configured: issue a new pair
      }
    },
    claim: (providerId, nowMs) => repo.claimLease(providerId, new Date(nowMs), new Date(nowMs + LEASE_MS)),
    async write(providerId, pair, nowMs) {
      const sealed = secrets.seal(JSON.stringify(pair), tokenContext(providerId));
      await repo.store(providerId, { sealed, accessExpiresAt: new Date(pair.accessExpiresAt), refreshExpiresAt: new Date(pair.refreshExpiresAt), now: new Date(nowMs) });
      return sealed;
    },
    release: (providerId) => repo.releaseLease(providerId),
    forget: (providerId, raw) => repo.forget(providerId, raw),
  };
}

function memoryStore(): PairStore {
  const pairs = new Map<string, { pair: Pair; raw: string }>();
  const leases = new Map<string, number>();
  let n = 0;
  return {
    read: async (providerId) => {
      const p = pairs.get(providerId);
      return p === undefined ? { pair: null, raw: null } : p;
    },
    claim: async (providerId, nowMs) => {
      if ((leases.get(providerId) ?? 0) > nowMs) return false;
      leases.set(providerId, nowMs + LEASE_MS);
      return true;
    },
    write: async (providerId, pair) => {
      const raw = String((n += 1));
      pairs.set(providerId, { pair, raw });
      leases.delete(providerId);
      return raw;
    },
    release: async (providerId) => {
      leases.delete(providerId);
    },
    forget: async (providerId, raw) => {
      if (pairs.get(providerId)?.raw === raw) pairs.delete(providerId);
    },
  };
}

export interface GoCardlessTokens {
  /** A usable access token for this provider entry (issued or refreshed only when needed). */
  access(provider: CatalogEntry, s: GoCardlessSettings): Promise<string>;
  /** GoCardless refused `token` ("Invalid token"): forget it everywhere so the next access() renews. */
  refused(provider: CatalogEntry, token: string): Promise<void>;
}

export function goCardlessTokens(opts: GoCardlessTokensOptions): GoCardlessTokens {
  const store = opts.db !== undefined && opts.secrets !== undefined ? databaseStore(opts.db, opts.secrets) : memoryStore();
  const cache = new Map<string, { pair: Pair; raw: string }>();
  /** One renewal per provider at a time within this process. */
  const inFlight = new Map<string, Promise<Pair>>();

  const usable = (p: Pair | null, s: GoCardlessSettings): p is Pair =>
    p !== null && p.secretId === s.secretId && p.accessExpiresAt - ACCESS_MARGIN_MS > opts.realNow();
  const refreshable = (p: Pair | null, s: GoCardlessSettings): p is Pair =>
    p !== null && p.secretId === s.secretId && p.refreshExpiresAt - REFRESH_MARGIN_MS > opts.realNow();

  async function issue(provider: CatalogEntry, s: GoCardlessSettings, previous: Pair | null): Promise<Pair> {
    const now = opts.realNow();
    if (refreshable(previous, s)) {
      try {
        const body = await callProvider({
          method: 'POST', url: `${s.apiUrl}/token/refresh/`, endpoint: '/token/refresh/', json: { refresh: previous.refresh }, timeoutMs: opts.timeoutMs,
        });
        const t = checkShape(TokenRefresh, body, 'the refreshed token');
        return { ...previous, access: t.access, accessExpiresAt: now + t.access_expires * 1000 };
      } catch (err) {
        // A refused refresh token: fall through to a new pair. Anything else (down, slow) is the caller's failure.
        if (!(err instanceof HttpStatusFailure && (err.status === 401 || err.status === 400))) throw err;
      }
    }
    let body: unknown;
    try {
      body = await callProvider({
        method: 'POST', url: `${s.apiUrl}/token/new/`, endpoint: '/token/new/', json: { secret_id: s.secretId, secret_key: s.secretKey }, timeoutMs: opts.timeoutMs,
      });
    } catch (err) {
      if (err instanceof HttpStatusFailure && (err.status === 401 || err.status === 403)) {
        // Mooring's own credentials, not the user's: the operator must act.
        throw new ProviderError('unavailable', `${provider.name} refused Mooring's secret pair; the operator must check this provider's secretId and secretKey`, { cause: err });
      }
      throw err;
    }
    const t = checkShape(TokenPair, body, 'the token pair');
    return { secretId: s.secretId, access: t.access, accessExpiresAt: now + t.access_expires * 1000, refresh: t.refresh, refreshExpiresAt: now + t.refresh_expires * 1000 };
  }

  async function renew(provider: CatalogEntry, s: GoCardlessSettings): Promise<Pair> {
    const deadline = opts.realNow() + opts.timeoutMs + LEASE_MS;
    for (;;) {
      const stored = await store.read(provider.id);
      if (usable(stored.pair, s) && stored.raw !== null) {
        cache.set(provider.id, { pair: stored.pair, raw: stored.raw });
        return stored.pair;
      }
      if (await store.claim(provider.id, opts.realNow())) {
        try {
          // Someone may have stored a pair between our read and our claim.
          const again = await store.read(provider.id);
          if (usable(again.pair, s) && again.raw !== null) {
            await store.release(provider.id);
            cache.set(provider.id, { pair: again.pair, raw: again.raw });
            return again.pair;
          }
          const pair = await issue(provider, s, again.pair);
          const raw = await store.write(provider.id, pair, opts.realNow());
          cache.set(provider.id, { pair, raw });
          return pair;
        } catch (err) {
          await store.release(provider.id).catch(() => undefined);
          throw err;
        }
      }
      if (opts.realNow() > deadline) throw new ProviderError('timeout', `${provider.name} did not issue an access token in time`);
      await sleep(WAIT_STEP_MS);
    }
  }

  return {
    async access(provider, s) {
      const cached = cache.get(provider.id);
      if (cached !== undefined && usable(cached.pair, s)) return cached.pair.access;
      let running = inFlight.get(provider.id);
      if (running === undefined) {
        running = renew(provider, s).finally(() => inFlight.delete(provider.id));
        inFlight.set(provider.id, running);
      }
      return (await running).access;
    },
    async refused(provider, token) {
      const cached = cache.get(provider.id);
      if (cached !== undefined && cached.pair.access === token) cache.delete(provider.id);
      const stored = await store.read(provider.id);
      if (stored.pair !== null && stored.raw !== null && stored.pair.access === token) await store.forget(provider.id, stored.raw);
    },
  };
}
