/**
 * A provider's hourly health for the console's chart, from the provider call log's hourly rollup
 * (provider-calls/): syncs by outcome and call latency percentiles per hour, oldest first.
 */
import type { Queryable } from '../db/db.ts';
import { providerCallsRepository } from '../provider-calls/repository.ts';
import { healthBuckets, hourOf } from '../provider-calls/rollup.ts';
import { HOUR_MS } from '../time.ts';
import type { ProviderPageInput } from './pages.ts';

export async function providerHealthBuckets(db: Queryable, providerId: string, now: Date, hours: number): Promise<ProviderPageInput['buckets']> {
  const from = new Date(hourOf(now).getTime() - (hours - 1) * HOUR_MS);
  return healthBuckets(await providerCallsRepository(db).hours(providerId, from), from, hours);
}
