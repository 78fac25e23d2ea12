/**
 * The sync engine: queues syncs (scheduled or requested), runs each exactly once under a lease,
 * joins concurrent requests for the same connection, and recovers syncs whose process died.
 *
 * The syncs table is the one queue. A sync moves queued → running → done. The partial unique
 * index syncs_one_active keeps at most one queued-or-running sync per connection, so two workers
 * can never sync a connection at once and a second request joins the first. The scheduler
 * (scheduler.ts) queues due connections; a claim (claim.ts) takes a queued sync to run under a
 * lease its runner renews; when the lease runs out the reaper (reaper.ts) queues it again, and
 * whoever claims it next runs it (a new attempt number fences the old run out).
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { providersRepository } from '../providers/repository.ts';
import { AppError } from '../errors.ts';
import { connectionsRepository } from '../connections/repository.ts';
import { isConsentExpired, isRateLimited } from '../connections/status.ts';
import type { Catalog } from '../providers/catalog.ts';
import { LONGEST_WINDOW_MS, syncBudget, upstreamBudgetOf, type UpstreamBudget } from './cadence.ts';
import { syncClaims } from './claim.ts';
import { syncReaper } from './reaper.ts';
import { syncsRepository, type SyncRow } from './repository.ts';
import { SCHEDULER_BATCH, syncScheduler } from './scheduler.ts';
import { DEFAULT_TIMERS, type Timers } from '../timers.ts';
import type { RunClaimed } from './runner.ts';
import type { SyncAction } from './schemas.ts';

export interface SyncEngineDeps {
  db: Db;
  catalog: Catalog;
  clock: Clock;
  runClaimed: RunClaimed;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** Real-time sleep (tests may shorten it). */
  sleep?: (ms: number) => Promise<void>;
  /** Leases, join polling and time-out (default DEFAULT_TIMERS). */
  timers?: Pick<Timers, 'runningLeaseSeconds' | 'queuedLeaseSeconds' | 'joinPollMs' | 'joinTimeoutMs'>;
}

export interface SyncRequest {
  connectionId: string;
  action: SyncAction;
  /** The user is present: a journey, or a client request with customerIpAddress. */
  attended: boolean;
  customerIpAddress?: string;
}

export type SyncOutcome =
  | { kind: 'done'; sync: SyncRow }
  /** The sync was queued and is running elsewhere (only with `wait: false`). */
  | { kind: 'started'; sync: SyncRow }
  /** No sync can run: the provider is retired, the consent expired, or the connection is gone. */
  | { kind: 'skipped'; reason: 'retired' | 'expired' | 'not_found' }
  /**
   * The provider answered a recent sync with 429 and its reset has not come: nothing is sent to it
   * (SPEC section 10) and no sync is recorded. `until`: when it may be called again.
   */
  | { kind: 'skipped'; reason: 'rate_limited'; until: Date; providerName: string };

export function syncEngine(deps: SyncEngineDeps) {
  const timers = deps.timers ?? DEFAULT_TIMERS;
  const syncs = syncsRepository(deps.db, timers);
  const claims = syncClaims({ db: deps.db, runClaimed: deps.runClaimed, timers, log: deps.log });
  const scheduler = syncScheduler(deps);
  const reaper = syncReaper(deps);
  const connections = connectionsRepository(deps.db);
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  /** Runs a sync if it is still queued (claiming it first); renews the lease while it runs. */
  const runIfQueued = (syncId: string, opts: { onlyIfDue?: boolean } = {}): Promise<boolean> => claims.claimAndRun(syncId, opts);

  async function waitDone(syncId: string): Promise<SyncRow> {
    const deadline = Date.now() + timers.joinTimeoutMs;
    for (;;) {
      const row = await syncs.findById(syncId);
      if (row === undefined) throw new AppError(404, 'not_found', 'Sync not found (its connection was deleted)');
      if (row.state === 'done') return row;
      // Given back to the queue after Mooring's own failure and due again: whoever waits runs it
      // (the claim keeps it to one run), so a requester is not left to a worker that may not exist.
      if (row.state === 'queued' && (await runIfQueued(syncId, { onlyIfDue: true }))) continue;
      if (Date.now() > deadline) throw new AppError(504, 'sync_timeout', 'The sync is still running; check it later with GET /users/:userId/syncs/:syncId');
      await sleep(timers.joinPollMs);
    }
  }

  async function unattendedBudget(connectionId: string, type: Parameters<typeof syncBudget>[0], now: Date, upstream: UpstreamBudget | null) {
    return syncBudget(type, await syncs.unattendedTimes(connectionId, new Date(now.getTime() - LONGEST_WINDOW_MS)), now, upstream);
  }

  return {
    /**
     * Starts (or joins) a sync of one connection and, with `wait`, answers once it is done.
     * Unattended client requests beyond the connection's budget get a 429 with Retry-After.
     * With `fresh`, a sync already running is waited for and a new one started (after a new grant).
     */
    async sync(req: SyncRequest, opts: { wait: boolean; enforceBudget: boolean; fresh?: boolean }): Promise<SyncOutcome> {
      const conn = await connections.findById(req.connectionId);
      if (conn === undefined) return { kind: 'skipped', reason: 'not_found' };
      const provider = deps.catalog.get(conn.provider_id);
      if (provider === undefined || (await providersRepository(deps.db).isRetired(conn.provider_id))) return { kind: 'skipped', reason: 'retired' };
      const now = deps.clock.now();
      if (isConsentExpired(conn.expires_at, now)) return { kind: 'skipped', reason: 'expired' };

      let sync = await syncs.findActiveForConnection(conn.id);
      // A sync under way is joined (it sends nothing new); a new one waits for the provider's reset.
      if (sync === undefined && isRateLimited(conn.rate_limited_until, now) && conn.rate_limited_until !== null) {
        return { kind: 'skipped', reason: 'rate_limited', until: conn.rate_limited_until, providerName: provider.name };
      }
      if (sync !== undefined && opts.fresh === true) {
        // The caller changed the connection (a new grant): a sync already under way does not count.
        await waitDone(sync.id);
        sync = await syncs.findActiveForConnection(conn.id);
      }
      if (sync === undefined) {
        if (!req.attended && opts.enforceBudget) {
          const budget = await unattendedBudget(conn.id, provider, now, upstreamBudgetOf(conn.upstream_budget_remaining, conn.upstream_budget_resets_at));
          if (budget.remaining === 0 && budget.resetsAt !== null) {
            const retryAfterSeconds = Math.max(1, Math.ceil((Date.parse(budget.resetsAt) - now.getTime()) / 1000));
            throw new AppError(429, 'sync_budget_exhausted', `${provider.name} allows a limited number of syncs without the user present; the next is possible at ${budget.resetsAt}. Send customerIpAddress when the user is present.`, {
              details: { retryAfter: budget.resetsAt },
              headers: { 'retry-after': String(retryAfterSeconds) },
            });
          }
        }
        const created = await syncs.insertQueued({
          id: randomUUID(), connectionId: conn.id, userId: conn.user_id, providerId: conn.provider_id, action: req.action,
          attended: req.attended, customerIp: req.customerIpAddress ?? null, now,
        });
        sync = created ?? (await syncs.findActiveForConnection(conn.id));
        if (sync === undefined) throw new Error('a sync vanished between queueing and joining it');
        if (created !== null) {
          const run = runIfQueued(created.id);
          if (!opts.wait) {
            run.catch((err: unknown) => deps.log.warn({ syncId: created.id, err: String(err) }, 'background sync failed'));
            return { kind: 'started', sync: created };
          }
          await run;
        }
      }
      if (!opts.wait) return { kind: 'started', sync };
      return { kind: 'done', sync: await waitDone(sync.id) };
    },

    /** Scheduler tick (scheduler.ts): queues a sync for every connection that is due now. */
    enqueueDue: scheduler.enqueueDue,

    /**
     * Runs every sync that is due now and answers when all have finished (the sandbox's
     * "run the scheduler now"). Syncs already queued for workers are waited for too.
     */
    async runDue(concurrency: number): Promise<SyncRow[]> {
      const finished: SyncRow[] = [];
      for (;;) {
        const batch = await this.enqueueDue();
        const known = new Set(batch.map((b) => b.id));
        const elsewhere = (await syncs.activeSyncs()).filter((a) => !known.has(a.id));
        const pending = [...batch, ...elsewhere];
        const runners = Array.from({ length: Math.min(concurrency, pending.length) }, async () => {
          for (let s = pending.shift(); s !== undefined; s = pending.shift()) {
            await runIfQueued(s.id);
            finished.push(await waitDone(s.id));
          }
        });
        await Promise.all(runners);
        if (batch.length < SCHEDULER_BATCH) return finished;
      }
    },

    /** Reaper (reaper.ts): queues again the running syncs whose lease ran out. */
    reap: reaper.reap,

    /** Claim (claim.ts): a worker's take of due syncs from the queue, and running one it took. */
    claimDue: claims.claimDue,
    runLeased: claims.runLeased,
  };
}
export type SyncEngine = ReturnType<typeof syncEngine>;
