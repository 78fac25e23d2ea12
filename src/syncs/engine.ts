/**
 * The sync engine: queues syncs (scheduled or requested), runs each exactly once under a lease,
 * joins concurrent requests for the same connection, and recovers syncs whose process died.
 *
 * A sync moves queued → running → done. The partial unique index syncs_one_active keeps at most
 * one queued-or-running sync per connection, so two workers can never sync a connection at once
 * and a second request joins the first. A running sync holds a lease its runner renews; when the
 * lease runs out the reaper queues it again, and whoever claims it next runs it.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import { HEALTH_WINDOW_MS, shouldBackOff } from '../providers/health.ts';
import { providersRepository } from '../providers/repository.ts';
import { AppError } from '../errors.ts';
import { connectionsRepository } from '../connections/repository.ts';
import { isConsentExpired } from '../connections/status.ts';
import type { Catalog } from '../providers/catalog.ts';
import { LONGEST_WINDOW_MS, nextScheduledSync, syncBudget } from './cadence.ts';
import { syncsRepository, type SyncRow } from './repository.ts';
import { DEFAULT_TIMERS, type Timers } from '../timers.ts';
import type { RunClaimed } from './runner.ts';
import type { SyncAction } from './schemas.ts';

/** Hands a queued sync to the workers (pg-boss), grouped by provider for per-provider concurrency. */
export interface SyncQueue {
  send(syncId: string, providerId: string): Promise<void>;
  /** Many at once (one round trip), for the scheduler tick. */
  sendMany(jobs: { syncId: string; providerId: string }[]): Promise<void>;
}

export interface SyncEngineDeps {
  db: Db;
  catalog: Catalog;
  clock: Clock;
  runClaimed: RunClaimed;
  /** Null in a process without workers: scheduled syncs then run only through `runDue`. */
  queue: SyncQueue | null;
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
  | { kind: 'skipped'; reason: 'retired' | 'expired' | 'not_found' };

export const SCHEDULER_BATCH = 1000;
/** A provider whose syncs mostly failed over the last hour gets no scheduled syncs for this long. */
export const PROVIDER_BACKOFF_MS = 3_600_000;
/** Providers whose syncs mostly failed at the provider over the last hour (see `shouldBackOff`). */
async function failingProviders(tx: Queryable, providerIds: string[], now: Date): Promise<Set<string>> {
  if (providerIds.length === 0) return new Set();
  const counts = await providersRepository(tx).healthCounts(providerIds, new Date(now.getTime() - HEALTH_WINDOW_MS));
  return new Set(counts.filter(shouldBackOff).map((x) => x.providerId));
}

export function syncEngine(deps: SyncEngineDeps) {
  const timers = deps.timers ?? DEFAULT_TIMERS;
  const leaseRenewMs = (timers.runningLeaseSeconds * 1000) / 3;
  const syncs = syncsRepository(deps.db, timers);
  const connections = connectionsRepository(deps.db);
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  /** Runs a sync if it is still queued (claiming it first); renews the lease while it runs. */
  async function runIfQueued(syncId: string, opts: { onlyIfDue?: boolean } = {}): Promise<boolean> {
    const claimed = await syncs.claim(syncId, opts);
    if (claimed === null) return false;
    const heartbeat = setInterval(() => {
      syncs.renewLease(syncId, claimed.attempts).catch((err: unknown) => deps.log.warn({ syncId, err: String(err) }, 'could not renew a sync lease'));
    }, leaseRenewMs);
    heartbeat.unref();
    try {
      await deps.runClaimed(claimed);
    } finally {
      clearInterval(heartbeat);
    }
    return true;
  }

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

  async function unattendedBudget(connectionId: string, type: Parameters<typeof syncBudget>[0], now: Date) {
    return syncBudget(type, await syncs.unattendedTimes(connectionId, new Date(now.getTime() - LONGEST_WINDOW_MS)), now);
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
      if (sync !== undefined && opts.fresh === true) {
        // The caller changed the connection (a new grant): a sync already under way does not count.
        await waitDone(sync.id);
        sync = await syncs.findActiveForConnection(conn.id);
      }
      if (sync === undefined) {
        if (!req.attended && opts.enforceBudget) {
          const budget = await unattendedBudget(conn.id, provider.type, now);
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

    /** Worker entry: runs the queued sync `syncId` unless someone else has it or it is done. */
    runQueued: runIfQueued,

    /**
     * Scheduler tick: queues a sync for every connection that is due now (up to `limit`) and moves
     * each one's next sync time forward. Connections that cannot sync (consent expired, provider
     * retired) leave the schedule; those of a provider in a declared outage wait for its end.
     */
    async enqueueDue(limit = SCHEDULER_BATCH): Promise<SyncRow[]> {
      const now = deps.clock.now();
      const queued = await deps.db.transaction(async (tx) => {
        const txConnections = connectionsRepository(tx);
        const txSyncs = syncsRepository(tx, timers);
        const due = await txConnections.lockDue(now, limit);
        const failing = await failingProviders(tx, [...new Set(due.map((d) => d.provider_id))], now);
        const updates: { id: string; next: Date | null }[] = [];
        const toQueue: { id: string; connectionId: string; userId: string; providerId: string }[] = [];
        for (const c of due) {
          const provider = deps.catalog.get(c.provider_id);
          if (provider === undefined || c.retired_at !== null || isConsentExpired(c.expires_at, now)) {
            updates.push({ id: c.id, next: null });
            continue;
          }
          if (c.outage_until !== null && c.outage_until.getTime() > now.getTime()) {
            updates.push({ id: c.id, next: c.outage_until });
            continue;
          }
          if (failing.has(c.provider_id)) {
            // The provider is failing most syncs: wait instead of adding to its load (no hot loop).
            updates.push({ id: c.id, next: new Date(now.getTime() + PROVIDER_BACKOFF_MS) });
            continue;
          }
          const budget = syncBudget(provider.type, c.unattended_sync_times, now);
          if (budget.remaining > 0) toQueue.push({ id: randomUUID(), connectionId: c.id, userId: c.user_id, providerId: c.provider_id });
          const after = budget.remaining > 0 ? syncBudget(provider.type, [...c.unattended_sync_times, now], now) : budget;
          updates.push({ id: c.id, next: nextScheduledSync(provider.type, now, after) });
        }
        const created = await txSyncs.insertQueuedMany(toQueue, 'auto-update', now);
        await txConnections.setNextSyncTimes(updates);
        return created;
      });
      if (deps.queue !== null) await deps.queue.sendMany(queued.map((s) => ({ syncId: s.id, providerId: s.provider_id })));
      return queued;
    },

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

    /** Queues again the syncs whose lease ran out, and hands them to the workers. */
    async reap(): Promise<number> {
      const expired = await syncs.requeueExpired(SCHEDULER_BATCH);
      for (const s of expired) {
        if (s.was === 'running') deps.log.warn({ syncId: s.id }, 'a sync was interrupted (its process stopped); queued again');
        if (deps.queue !== null) await deps.queue.send(s.id, s.provider_id);
      }
      return expired.length;
    },
  };
}
export type SyncEngine = ReturnType<typeof syncEngine>;
