/**
 * The scheduler: each tick queues a sync for every connection that is due (into the syncs table,
 * the one queue, where workers claim them) and moves each connection's next sync time forward.
 * Due connections are locked (skip locked) for the tick, so two workers never queue one twice;
 * the partial unique index syncs_one_active keeps one queued-or-running sync per connection.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import { HEALTH_WINDOW_MS, shouldBackOff } from '../providers/health.ts';
import { providersRepository } from '../providers/repository.ts';
import { readSetting, writeSetting } from '../db/settings.ts';
import { isConsentExpired, isRateLimited } from '../connections/status.ts';
import { connectionsRepository } from '../connections/repository.ts';
import type { Catalog } from '../providers/catalog.ts';
import { afterOneSync, nextScheduledSync, syncBudget, upstreamBudgetOf } from './cadence.ts';
import { syncsRepository, type SyncRow } from './repository.ts';

export const SCHEDULER_BATCH = 1000;
/** A provider whose syncs mostly failed over the last hour gets no scheduled syncs for this long. */
export const PROVIDER_BACKOFF_MS = 3_600_000;
/** Providers whose syncs mostly failed at the provider over the last hour (see `shouldBackOff`). */
async function failingProviders(tx: Queryable, providerIds: string[], now: Date): Promise<Set<string>> {
  if (providerIds.length === 0) return new Set();
  const counts = await providersRepository(tx).healthCounts(providerIds, new Date(now.getTime() - HEALTH_WINDOW_MS));
  return new Set(counts.filter(shouldBackOff).map((x) => x.providerId));
}

export interface SyncSchedulerDeps {
  db: Db;
  catalog: Catalog;
  clock: Clock;
}

/**
 * Whether a connection of a provider in the catalog keeps (or may return to) the unattended
 * schedule: its provider is not retired and its consent has not expired. Connections that fail it
 * leave the schedule (next sync time null) until a journey renews them.
 */
export function staysOnSchedule(c: { retired_at: Date | null; expires_at: Date | null }, now: Date): boolean {
  return c.retired_at === null && !isConsentExpired(c.expires_at, now);
}

/** The providers that were in the catalog at the last start (see `returnToSchedule`). */
export const SCHEDULED_PROVIDERS_SETTING = 'scheduled_provider_ids';

export function syncScheduler(deps: SyncSchedulerDeps) {
  return {
    /**
     * At start-up: connections the scheduler took off the schedule because their provider was not
     * in the catalog (a provider removed from the providers file, the sandbox turned off) return to
     * it when their provider is back, with the next sync time a renewed connection gets. Only the
     * providers that were not in the catalog at the last start are looked at (all of them the first
     * time), in pages of `batch` connections by id, each page in its own transaction; connections
     * that are off the schedule for another reason (consent expired, provider retired) stay off.
     */
    async returnToSchedule(batch = SCHEDULER_BATCH): Promise<number> {
      const current = deps.catalog.all().map((p) => p.id);
      const before = await readSetting<unknown>(deps.db, SCHEDULED_PROVIDERS_SETTING);
      const known = new Set(Array.isArray(before) ? before.filter((x): x is string => typeof x === 'string') : []);
      const back = Array.isArray(before) ? current.filter((id) => !known.has(id)) : current;
      let returned = 0;
      let afterId = '';
      while (back.length > 0) {
        const now = deps.clock.now();
        const page = await connectionsRepository(deps.db).unscheduledOfProviders(back, afterId, batch);
        const updates: { id: string; next: Date }[] = [];
        for (const c of page) {
          const provider = deps.catalog.get(c.provider_id);
          if (provider !== undefined && staysOnSchedule(c, now)) updates.push({ id: c.id, next: nextScheduledSync(provider, now) });
        }
        returned += await connectionsRepository(deps.db).scheduleManyIfIdle(updates);
        const last = page[page.length - 1];
        if (last === undefined || page.length < batch) break;
        afterId = last.id;
      }
      // Written once every returning connection is back: a start that stops part-way looks at them again.
      await writeSetting(deps.db, SCHEDULED_PROVIDERS_SETTING, current);
      return returned;
    },

    /**
     * Scheduler tick: queues a sync for every connection that is due now (up to `limit`), ready
     * for any worker's claim, and moves each one's next sync time forward. Connections that cannot
     * sync (consent expired, provider retired) leave the schedule; those of a provider in a
     * declared outage wait for its end, and those rate-limited by their provider for its reset.
     */
    async enqueueDue(limit = SCHEDULER_BATCH): Promise<SyncRow[]> {
      const now = deps.clock.now();
      return deps.db.transaction(async (tx) => {
        const txConnections = connectionsRepository(tx);
        const txSyncs = syncsRepository(tx);
        const due = await txConnections.lockDue(now, limit);
        const failing = await failingProviders(tx, [...new Set(due.map((d) => d.provider_id))], now);
        const updates: { id: string; next: Date | null }[] = [];
        const toQueue: { id: string; connectionId: string; userId: string; providerId: string }[] = [];
        for (const c of due) {
          const provider = deps.catalog.get(c.provider_id);
          if (provider === undefined || !staysOnSchedule(c, now)) {
            updates.push({ id: c.id, next: null });
            continue;
          }
          if (c.outage_until !== null && c.outage_until.getTime() > now.getTime()) {
            updates.push({ id: c.id, next: c.outage_until });
            continue;
          }
          if (isRateLimited(c.rate_limited_until, now)) {
            // The provider answered 429: nothing goes to it for this connection before its reset.
            updates.push({ id: c.id, next: c.rate_limited_until });
            continue;
          }
          if (failing.has(c.provider_id)) {
            // The provider is failing most syncs: wait instead of adding to its load (no hot loop).
            updates.push({ id: c.id, next: new Date(now.getTime() + PROVIDER_BACKOFF_MS) });
            continue;
          }
          const upstream = upstreamBudgetOf(c.upstream_budget_remaining, c.upstream_budget_resets_at);
          const budget = syncBudget(provider, c.unattended_sync_times, now, upstream);
          if (budget.remaining > 0) toQueue.push({ id: randomUUID(), connectionId: c.id, userId: c.user_id, providerId: c.provider_id });
          const after = budget.remaining > 0 ? syncBudget(provider, [...c.unattended_sync_times, now], now, afterOneSync(upstream)) : budget;
          updates.push({ id: c.id, next: nextScheduledSync(provider, now, after) });
        }
        const created = await txSyncs.insertQueuedMany(toQueue, 'auto-update', now);
        await txConnections.setNextSyncTimes(updates);
        return created;
      });
    },
  };
}
export type SyncScheduler = ReturnType<typeof syncScheduler>;
