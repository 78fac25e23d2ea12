/** A provider's hourly health for the console's chart: syncs and their outcomes per hour, oldest first. */
import type { Queryable } from '../db/db.ts';
import { HOUR_MS } from '../time.ts';
import type { ProviderPageInput } from './pages.ts';
import { providerSyncHours } from './repository.ts';

export async function providerHealthBuckets(db: Queryable, providerId: string, now: Date, hours: number): Promise<ProviderPageInput['buckets']> {
  const firstHour = Math.floor(now.getTime() / HOUR_MS) - hours + 1;
  const rows = await providerSyncHours(db, providerId, new Date(firstHour * HOUR_MS));
  return Array.from({ length: hours }, (_, i) => {
    const h = firstHour + i;
    const mine = rows.filter((r) => r.hour === h);
    const failures: Record<string, number> = {};
    for (const r of mine) if (r.fetch_status !== 'success' && r.fetch_status !== 'partial') failures[r.fetch_status] = (failures[r.fetch_status] ?? 0) + r.n;
    const syncs = mine.reduce((a, r) => a + r.n, 0);
    return { hour: new Date(h * HOUR_MS).toISOString(), syncs, successes: syncs - Object.values(failures).reduce((a, n) => a + n, 0), failures, p50LatencyMs: null, p95LatencyMs: null };
  });
}
