/**
 * What the operator asks of the provider call log: a filtered page of calls (newest first, keyset
 * pagination) and a provider's hourly health from the rollup. Each process's waiting rows are
 * written first, so what this process recorded is visible at once.
 */
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { badRequest, notFound } from '../errors.ts';
import type { Catalog } from '../providers/catalog.ts';
import { HOUR_MS } from '../time.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { providerCallsRepository, type CallFilter, type StoredCall } from './repository.ts';
import { healthBuckets, hourOf, type HealthBucket } from './rollup.ts';
import type { ProviderCallLog } from './writer.ts';

export const DEFAULT_HEALTH_HOURS = 168;
export const MAX_HEALTH_HOURS = 720;

export interface ProviderCallsServiceDeps {
  db: Db;
  catalog: Catalog;
  clock: Clock;
  callLog?: ProviderCallLog;
}

export function providerCallsService(deps: ProviderCallsServiceDeps) {
  const repo = providerCallsRepository(deps.db);
  return {
    async list(filter: CallFilter, cursor: string | undefined, limit: number): Promise<{ calls: StoredCall[]; next: string | null }> {
      const after = cursor === undefined ? null : decodeCursor(cursor);
      if (after === null && cursor !== undefined) throw badRequest('invalid_cursor', 'cursor is not one this API gave; start again without it');
      await deps.callLog?.flush();
      const rows = await repo.list(filter, after, limit + 1);
      const calls = rows.slice(0, limit);
      const last = calls[calls.length - 1];
      return { calls, next: rows.length > limit && last !== undefined ? encodeCursor({ at: last.at, id: last.id }) : null };
    },

    /** One bucket per hour for the last `hours` hours, the current hour last. */
    async health(providerId: string, hours: number): Promise<{ from: Date; buckets: HealthBucket[] }> {
      if (deps.catalog.get(providerId) === undefined) throw notFound('Provider');
      await deps.callLog?.flush();
      const from = new Date(hourOf(deps.clock.now()).getTime() - (hours - 1) * HOUR_MS);
      return { from, buckets: healthBuckets(await repo.hours(providerId, from), from, hours) };
    },
  };
}
export type ProviderCallsService = ReturnType<typeof providerCallsService>;
