/**
 * Runs one sync of one connection: asks the provider adapter for data, stores what came back,
 * records the attempt, and updates the connection's freshness and failure streak. Provider
 * failures arrive as ProviderErrors and are decided by kind; nothing here parses messages.
 *
 * Anything else that goes wrong (the database, a bug) is Mooring's failure, never the provider's:
 * storing is retried, and if it still fails the sync goes back to the queue untouched (see
 * endAsInternalFailure), so no provider health, back-off, failure streak or connection status
 * ever reflects it.
 */
import type { SecretBox } from '../crypto/secrets.ts';
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import type { NewTransactions } from '../webhooks/events.ts';
import { accountsRepository } from '../accounts/repository.ts';
import { connectionsRepository } from '../connections/repository.ts';
import { isConsentExpired, isRateLimited, nextLastUpdated, upstreamConsentExpiry, type CountedFetchStatus } from '../connections/status.ts';
import type { Catalog, CatalogEntry } from '../providers/catalog.ts';
import { adapterFor, ProviderError, type FetchResult, type ProviderAdapters, type ProviderErrorKind } from '../providers/provider.ts';
import type { ProviderCallLog } from '../provider-calls/writer.ts';
import { rateLimitEnd } from './cadence.ts';
import { syncsRepository, type SyncRow } from './repository.ts';
import type { SyncJson } from './schemas.ts';
import { DAY_MS } from '../time.ts';

/** Called inside the transaction that finishes a sync, with the finished row (webhook events). */
export type AfterSync = (tx: Queryable, finished: SyncRow, newTransactions: NewTransactions[]) => Promise<void>;

export interface SyncRunnerDeps {
  afterSync?: AfterSync;
  db: Db;
  catalog: Catalog;
  adapters: ProviderAdapters;
  clock: Clock;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Opens and seals provider grants. */
  secrets: SecretBox;
  /** Records the provider calls of each sync and its outcome (call log, hourly health, metrics). */
  callLog?: ProviderCallLog;
}

/** The run no longer owns its sync: it stalled past its lease and the sync was run again. */
export class LostSyncError extends Error {
  constructor(syncId: string) {
    super(`sync ${syncId} is no longer owned by this run`);
  }
}

/** Tries at storing a sync's result before the run ends as Mooring's own failure. */
const STORE_ATTEMPTS = 3;
const STORE_RETRY_BASE_MS = 250;
/** Runs of one sync (claims) that may end in Mooring's own failure before the sync ends as one. */
export const MAX_SYNC_ATTEMPTS = 5;
/** How long a sync given back to the queue after Mooring's own failure waits before it runs again. */
export const INTERNAL_RETRY_DELAY_SECONDS = 10;
const INTERNAL_RETRY_DETAIL = 'Mooring could not complete this attempt (an internal failure, not the provider\'s); the sync runs again shortly';
const INTERNAL_FAILURE_DETAIL = 'Mooring could not complete this sync (an internal failure, not the provider\'s); the next scheduled sync tries again';

const describe = (err: unknown): string => (err instanceof Error ? (err.stack ?? err.message) : String(err));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Transactions are re-read from this long before lastUpdated, to pick up late bookings and changes. */
const OVERLAP_MS = 7 * DAY_MS;

/** A provider's 429 (`rate_limited`) is not here: that sync is rate-limited, never a failed one (see finishRateLimited). */
const FETCH_STATUS_BY_ERROR: Record<Exclude<ProviderErrorKind, 'rate_limited'>, CountedFetchStatus> = {
  credentials: 'credentials-error',
  consent_expired: 'credentials-error',
  mfa_required: 'mfa-required',
  unavailable: 'error',
  bad_response: 'error',
  timeout: 'error',
  journey_rejected: 'error',
  invalid_input: 'error',
};

const NO_COUNTS = { accounts: 0, transactionsAdded: 0, transactionsUpdated: 0 };

export function toSyncJson(s: SyncRow): SyncJson {
  return {
    id: s.id,
    connectionId: s.connection_id,
    action: s.action,
    method: s.method,
    fetchStatus: s.fetch_status,
    createdAt: s.created_at.toISOString(),
    fetchedAt: s.fetched_at?.toISOString() ?? null,
    accounts: s.accounts,
    state: s.state,
    finishedAt: s.finished_at?.toISOString() ?? null,
    counts: s.counts,
    errorDetail: s.error_detail,
  };
}

/**
 * Runs a sync that has been claimed (state running): fetches from the provider, stores the data,
 * finishes the sync record and updates the connection. Never throws for provider failures.
 */
export function syncRunner(deps: SyncRunnerDeps) {
  const connections = connectionsRepository(deps.db, deps.secrets);

  /**
   * Fencing: a runner writes only while it still owns the sync (state running, its own attempt).
   * A runner that stalled past its lease, while another ran the sync again, writes nothing.
   * The row lock also keeps the reaper away while the result is being stored.
   */
  async function assertStillOwned(tx: Queryable, sync: SyncRow): Promise<void> {
    if (!(await syncsRepository(tx).lockIfStillRunning(sync.id, sync.attempts))) throw new LostSyncError(sync.id);
  }

  /**
   * True when a journey replaced the grant, or a reconsent or PATCH renewed the consent at Mooring,
   * while this sync ran (locks the connection): its result, an upstream expiry above all, must not undo that.
   */
  async function grantReplaced(tx: Queryable, connectionId: string, version: number): Promise<boolean> {
    return (await connectionsRepository(tx).lockGrantVersion(connectionId)) !== version;
  }

  /** Ends a sync whose grant was replaced or consent renewed mid-run: its result says nothing about the renewed access. */
  async function finishSuperseded(tx: Queryable, sync: SyncRow): Promise<void> {
    await syncsRepository(tx).finish(sync.id, {
      fetchStatus: 'error',
      fetchedAt: null,
      finishedAt: deps.clock.now(),
      counts: NO_COUNTS,
      errorDetail: 'Superseded: the user re-authorised this connection or renewed its consent while the sync ran; its result is not kept, and the next sync runs with the renewed access',
      accounts: [],
    });
  }

  const lost = (sync: SyncRow): void => {
    deps.log.warn({ syncId: sync.id }, 'this run lost its lease (it stalled) and another run took the sync over; its result is discarded');
  };

  /**
   * Ends a sync as failed. `consentExpiredAt`: the upstream said the consent expired then (placed
   * by status.ts upstreamConsentExpiry), so the connection's expiresAt comes forward to it and
   * status rule 2 (expired consent) applies from now on: no more scheduled syncs, the expiry event
   * once (afterSync records the status change in this transaction).
   */
  async function finishFailed(
    sync: SyncRow, connectionId: string, startedAt: Date, fetchStatus: CountedFetchStatus, detail: string, grantVersion: number | null = null, consentExpiredAt: Date | null = null,
  ): Promise<void> {
    await deps.db.transaction(async (tx) => {
      await assertStillOwned(tx, sync);
      if (grantVersion !== null && (await grantReplaced(tx, connectionId, grantVersion))) return finishSuperseded(tx, sync);
      await connectionsRepository(tx).recordSyncOutcome(connectionId, { fetchStatus, lastUpdated: null, grant: null, attemptAt: startedAt, failed: true });
      if (consentExpiredAt !== null) await connectionsRepository(tx).recordConsentExpired(connectionId, consentExpiredAt);
      const finished = await syncsRepository(tx).finish(sync.id, {
        fetchStatus,
        fetchedAt: null,
        finishedAt: deps.clock.now(),
        counts: { accounts: 0, transactionsAdded: 0, transactionsUpdated: 0 },
        errorDetail: detail,
        accounts: [],
      });
      await deps.afterSync?.(tx, finished, []);
    }).catch((err: unknown) => {
      if (err instanceof LostSyncError) lost(sync);
      else throw err;
    });
  }

  /**
   * Ends a sync as `rate-limited` (SPEC sections 5 and 10): the provider answered 429, or its last
   * 429 still holds and so it was not called. Nothing is retried inside this sync. The connection
   * keeps its status, error, lastUpdated, failure streak and last fetch status; a new 429
   * (`until` set) records when Mooring may call the provider again and moves the next scheduled
   * sync there. Provider health and back-off do not count the sync (see providers/health.ts).
   */
  async function finishRateLimited(sync: SyncRow, connectionId: string, o: { detail: string; attemptAt: Date; until: Date | null; grantVersion: number | null }): Promise<void> {
    await deps.db.transaction(async (tx) => {
      await assertStillOwned(tx, sync);
      if (o.grantVersion !== null && (await grantReplaced(tx, connectionId, o.grantVersion))) return finishSuperseded(tx, sync);
      if (o.until !== null) await connectionsRepository(tx).recordRateLimited(connectionId, { until: o.until, attemptAt: o.attemptAt });
      await syncsRepository(tx).finish(sync.id, {
        fetchStatus: 'rate-limited', fetchedAt: null, finishedAt: deps.clock.now(), counts: NO_COUNTS, errorDetail: o.detail, accounts: [],
      });
      await deps.afterSync?.(tx, sync, []);
    }).catch((err: unknown) => {
      if (err instanceof LostSyncError) lost(sync);
      else throw err;
    });
  }

  /** The 429 of `provider` at `answeredAt`: when Mooring may call it again, and the sync's errorDetail saying so. */
  function rateLimitOf(provider: CatalogEntry, answeredAt: Date, retryAfterMs: number | undefined, scheduledNext: Date | null): { until: Date; detail: string } {
    const until = rateLimitEnd(provider, answeredAt, retryAfterMs, scheduledNext);
    const when = retryAfterMs !== undefined ? 'the reset time it gave' : 'the next scheduled sync, as it gave no reset time';
    return {
      until,
      detail: `${provider.name} limited how often Mooring may ask (HTTP 429); Mooring does not call it for this connection before ${until.toISOString()} (${when}) and tries again then`,
    };
  }

  /**
   * Stores what the provider sent. Mooring's own failures here (a lost database connection, a
   * deadlock, a serialization failure, an exhausted pool) are retried a few times: the data is in
   * hand and says nothing bad about the provider.
   */
  async function storeWithRetries(store: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await store();
      } catch (err) {
        if (err instanceof LostSyncError || attempt >= STORE_ATTEMPTS) throw err;
        deps.log.warn({ attempt, err: describe(err) }, 'storing a sync failed (Mooring, not the provider); retrying');
        await sleep(STORE_RETRY_BASE_MS * attempt);
      }
    }
  }

  /**
   * Ends this run as Mooring's own failure: nothing is recorded against the connection or the
   * provider. The sync goes back to the queue to run again later, or, once it has failed this way
   * MAX_SYNC_ATTEMPTS times, ends done/error flagged internal. If even that cannot be written (the
   * database is down), the running lease runs out and the reaper queues the sync again.
   */
  async function endAsInternalFailure(sync: SyncRow, err: unknown): Promise<void> {
    deps.log.error({ syncId: sync.id, connectionId: sync.connection_id, err: describe(err) }, 'a sync failed inside Mooring (not the provider); it will run again');
    const txSyncs = syncsRepository(deps.db);
    try {
      if (sync.attempts < MAX_SYNC_ATTEMPTS) {
        await txSyncs.releaseForRetry(sync.id, sync.attempts, INTERNAL_RETRY_DELAY_SECONDS, INTERNAL_RETRY_DETAIL);
      } else {
        await txSyncs.finishInternalFailure(sync.id, sync.attempts, deps.clock.now(), INTERNAL_FAILURE_DETAIL);
      }
    } catch (again) {
      deps.log.error({ syncId: sync.id, err: describe(again) }, 'could not release the sync either; its lease will run out and the reaper queues it again');
    }
  }

  return async function runClaimed(sync: SyncRow): Promise<void> {
    try {
      await runOwned(sync);
    } catch (err) {
      if (err instanceof LostSyncError) return lost(sync);
      await endAsInternalFailure(sync, err);
    }
  };

  /** Runs the sync; only a ProviderError from the adapter is the provider's failure, anything thrown is Mooring's. */
  async function runOwned(sync: SyncRow): Promise<void> {
    const startedAt = deps.clock.now();
    const found = await connections.findForSync(sync.connection_id);
    if (found === undefined) return; // deleted meanwhile; its syncs went with it
    const conn = found.connection;
    const provider = deps.catalog.get(conn.provider_id);
    const ended = (outcome: string): void => deps.callLog?.syncFinished(conn.provider_id, outcome, startedAt);
    if (provider === undefined) {
      await finishFailed(sync, conn.id, startedAt, 'error', 'The provider is no longer available');
      return ended('error');
    }
    if (isConsentExpired(conn.expires_at, startedAt)) {
      await finishFailed(sync, conn.id, startedAt, 'credentials-error', 'Consent expired before the sync ran');
      return ended('credentials-error');
    }
    if (isRateLimited(conn.rate_limited_until, startedAt) && conn.rate_limited_until !== null) {
      // Queued before the 429 landed (or re-queued): the provider is not called before its reset.
      const detail = `Not sent to ${provider.name}: it limited how often Mooring may ask, and Mooring does not call it for this connection before ${conn.rate_limited_until.toISOString()}`;
      await storeWithRetries(() => finishRateLimited(sync, conn.id, { detail, attemptAt: startedAt, until: null, grantVersion: null }));
      return ended('rate-limited');
    }
    const grant = found.openGrant();
    const grantVersion = found.grantVersion;
    let result: FetchResult;
    const fetchInput = {
      provider,
      grant,
      attended: sync.attended,
      ...(sync.customer_ip !== null ? { customerIpAddress: sync.customer_ip } : {}),
      since: conn.last_updated === null ? null : new Date(conn.last_updated.getTime() - OVERLAP_MS),
      now: startedAt,
    };
    const fetch = (): Promise<FetchResult> => adapterFor(deps.adapters, provider).fetch(fetchInput);
    try {
      result = await (deps.callLog === undefined ? fetch() : deps.callLog.run({ providerId: provider.id, connectionId: conn.id, syncId: sync.id }, fetch));
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      if (err.kind === 'rate_limited') {
        const { until, detail } = rateLimitOf(provider, deps.clock.now(), err.retryAfterMs, conn.next_sync_at);
        await storeWithRetries(() => finishRateLimited(sync, conn.id, { detail, attemptAt: startedAt, until, grantVersion }));
        return ended(err.kind);
      }
      const kind = err.kind;
      const expiredAt = kind === 'consent_expired' ? upstreamConsentExpiry(err.expiredAt, startedAt) : null;
      await storeWithRetries(() => finishFailed(sync, conn.id, startedAt, FETCH_STATUS_BY_ERROR[kind], err.safeDetail, grantVersion, expiredAt));
      return ended(kind);
    }
    const fetchedAt = deps.clock.now();
    const fetchStatus: CountedFetchStatus = result.partial ? 'partial' : 'success';
    await storeWithRetries(() => deps.db.transaction(async (tx) => {
      await assertStillOwned(tx, sync);
      if (await grantReplaced(tx, conn.id, grantVersion)) return finishSuperseded(tx, sync);
      const txSyncs = syncsRepository(tx);
      const txAccounts = accountsRepository(tx);
      const accountIds = await txAccounts.upsertAccounts(conn.id, conn.user_id, result.accounts, fetchedAt);
      const { added, updated, addedIds } = await txAccounts.upsertTransactions(conn.user_id, accountIds, result.transactions, fetchedAt);
      const txConnections = connectionsRepository(tx, deps.secrets);
      await txConnections.recordSyncOutcome(conn.id, {
        fetchStatus,
        lastUpdated: nextLastUpdated(conn.last_updated, result.asOf, fetchedAt),
        grant: result.grant,
        attemptAt: startedAt,
        failed: result.partial,
      });
      const upstream = result.upstreamBudget;
      await txConnections.recordUpstreamBudget(conn.id, upstream === undefined ? null : { remaining: upstream.remaining, resetsAt: new Date(fetchedAt.getTime() + upstream.resetsInMs) });
      const finished = await txSyncs.finish(sync.id, {
        fetchStatus,
        fetchedAt,
        finishedAt: deps.clock.now(),
        counts: { accounts: result.accounts.length, transactionsAdded: added, transactionsUpdated: updated },
        errorDetail: result.partial ? (result.partialDetail ?? 'Some data could not be retrieved from the provider') : null,
        accounts: [...accountIds.values()].map((accountId) => ({ providerId: provider.id, accountId })),
      });
      const byAccount = new Map<string, string[]>();
      for (const t of addedIds) byAccount.set(t.accountId, [...(byAccount.get(t.accountId) ?? []), t.transactionId]);
      await deps.afterSync?.(tx, finished, [...byAccount].map(([accountId, transactionIds]) => ({ accountId, transactionIds })));
    }));
    ended(fetchStatus);
  }
}
export type RunClaimed = ReturnType<typeof syncRunner>;
