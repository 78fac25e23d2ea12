/**
 * The gauges /metrics computes at scrape time, from the database (the truth across every API and
 * worker process). Each is one indexed lookup or a range of a partial index, cheap at a million
 * connections: connections_due (min), syncs_active_lease (unfinished syncs only),
 * webhook_events_pending_created (min) and connections_expiry (a 7-day range).
 */
import type { Queryable } from '../db/db.ts';

export interface GaugeValues {
  /** The oldest next_sync_at that has come and was not queued yet (the scheduler moves it forward when it queues); null when none. */
  oldestDueSyncAt: Date | null;
  syncsQueued: number;
  syncsRunning: number;
  /** When the oldest webhook event still awaiting delivery was created; null when none. */
  oldestPendingWebhookAt: Date | null;
  consentsExpiringSoon: number;
}

export function metricsRepository(db: Queryable) {
  return {
    async gauges(now: Date, expiringBefore: Date): Promise<GaugeValues> {
      const r = await db.query<{ due: Date | null; queued: string; running: string; webhook: Date | null; expiring: string }>(
        `select (select min(next_sync_at) from connections where next_sync_at is not null and next_sync_at <= $1) as due,
                (select count(*) from syncs where state = 'queued') as queued,
                (select count(*) from syncs where state = 'running') as running,
                (select min(created_at) from webhook_events where next_attempt_at is not null) as webhook,
                (select count(*) from connections where expires_at > $1 and expires_at <= $2) as expiring`,
        [now, expiringBefore],
      );
      const row = r.rows[0];
      return {
        oldestDueSyncAt: row?.due ?? null,
        syncsQueued: Number(row?.queued ?? 0),
        syncsRunning: Number(row?.running ?? 0),
        oldestPendingWebhookAt: row?.webhook ?? null,
        consentsExpiringSoon: Number(row?.expiring ?? 0),
      };
    },
  };
}
