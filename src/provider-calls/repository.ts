/**
 * The provider call log and its hourly rollup (migrations/0017_provider_calls.sql). Writes are
 * whole batches (one statement each, arrays as parameters); reads walk an index newest first with
 * a keyset cursor (at, id); pruning deletes bounded batches along provider_calls_at.
 */
import type { Queryable } from '../db/db.ts';
import type { ProviderErrorKind } from '../providers/provider.ts';
import type { ProviderCallRow } from './context.ts';
import type { HourRow } from './rollup.ts';

export interface StoredCall extends ProviderCallRow {
  id: string;
}

/** An hour's rollup increment (see provider_call_hours). */
export interface HourIncrement {
  providerId: string;
  hour: Date;
  subject: 'call' | 'sync';
  outcome: string;
  n: number;
  latencyBuckets: number[] | null;
}

export interface CallFilter {
  providerId?: string;
  connectionId?: string;
  status?: number;
  errorKind?: string;
  since?: Date;
  until?: Date;
}

/** The position after which a page continues: the last row's (at, id). */
export interface CallCursor {
  at: Date;
  id: string;
}

interface DbCall {
  id: string;
  at: Date;
  provider_id: string;
  connection_id: string | null;
  sync_id: string | null;
  journey_id: string | null;
  method: string;
  endpoint: string;
  status: number | null;
  latency_ms: number;
  error_kind: ProviderErrorKind | null;
  interaction_id: string | null;
}

const toCall = (r: DbCall): StoredCall => ({
  id: String(r.id), at: r.at, providerId: r.provider_id, connectionId: r.connection_id, syncId: r.sync_id, journeyId: r.journey_id,
  method: r.method, endpoint: r.endpoint, status: r.status, latencyMs: r.latency_ms, errorKind: r.error_kind, interactionId: r.interaction_id,
});

export function providerCallsRepository(db: Queryable) {
  return {
    async insertCalls(rows: readonly ProviderCallRow[]): Promise<void> {
      if (rows.length === 0) return;
      const col = <K extends keyof ProviderCallRow>(k: K): ProviderCallRow[K][] => rows.map((r) => r[k]);
      await db.query(
        `insert into provider_calls (at, provider_id, connection_id, sync_id, journey_id, method, endpoint, status, latency_ms, error_kind, interaction_id)
         select * from unnest($1::timestamptz[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::int[], $9::int[], $10::text[], $11::text[])`,
        [
          col('at').map((d) => d.toISOString()), col('providerId'), col('connectionId'), col('syncId'), col('journeyId'), col('method'), col('endpoint'),
          col('status'), col('latencyMs'), col('errorKind'), col('interactionId'),
        ],
      );
    },

    /** Adds to the hourly rollup. Callers merge increments of one key first and sort them (no deadlocks between processes). */
    async addToHours(increments: readonly HourIncrement[]): Promise<void> {
      if (increments.length === 0) return;
      await db.query(
        `insert into provider_call_hours as h (provider_id, hour, subject, outcome, n, latency_buckets)
         select p, t, s, o, n, b::int[] from unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::bigint[], $6::text[]) as u(p, t, s, o, n, b)
         on conflict (provider_id, hour, subject, outcome) do update set
           n = h.n + excluded.n,
           latency_buckets = case
             when h.latency_buckets is null then excluded.latency_buckets
             when excluded.latency_buckets is null then h.latency_buckets
             else array(select coalesce(a, 0) + coalesce(b, 0) from unnest(h.latency_buckets, excluded.latency_buckets) with ordinality as x(a, b, i) order by i)
           end`,
        [
          increments.map((i) => i.providerId), increments.map((i) => i.hour.toISOString()), increments.map((i) => i.subject), increments.map((i) => i.outcome),
          increments.map((i) => i.n), increments.map((i) => (i.latencyBuckets === null ? null : `{${i.latencyBuckets.join(',')}}`)),
        ],
      );
    },

    /** Calls matching `filter`, newest first, after `cursor`; `limit` at most. */
    async list(filter: CallFilter, cursor: CallCursor | null, limit: number): Promise<StoredCall[]> {
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (sql: string, value: unknown): void => {
        params.push(value);
        where.push(sql.replace('?', `$${params.length}`));
      };
      if (filter.providerId !== undefined) add('provider_id = ?', filter.providerId);
      if (filter.connectionId !== undefined) add('connection_id = ?', filter.connectionId);
      if (filter.status !== undefined) add('status = ?', filter.status);
      if (filter.errorKind !== undefined) add('error_kind = ?', filter.errorKind);
      if (filter.since !== undefined) add('at >= ?', filter.since);
      if (filter.until !== undefined) add('at < ?', filter.until);
      if (cursor !== null) {
        params.push(cursor.at, cursor.id);
        where.push(`(at, id) < ($${params.length - 1}::timestamptz, $${params.length}::bigint)`);
      }
      params.push(limit);
      const r = await db.query<DbCall>(
        `select id, at, provider_id, connection_id, sync_id, journey_id, method, endpoint, status, latency_ms, error_kind, interaction_id
           from provider_calls ${where.length === 0 ? '' : `where ${where.join(' and ')}`}
          order by at desc, id desc limit $${params.length}`,
        params,
      );
      return r.rows.map(toCall);
    },

    /**
     * The rollup rows of one provider from `since` (an hour) on. Hours come as epoch seconds and
     * histograms as their text form: up to 720 hours × a few outcomes are read per request, and
     * the drivers' generic date and array parsing was most of its time.
     */
    async hours(providerId: string, since: Date): Promise<HourRow[]> {
      const r = await db.query<{ epoch: string | number; subject: 'call' | 'sync'; outcome: string; n: string | number; buckets: string | null }>(
        `select extract(epoch from hour)::bigint as epoch, subject, outcome, n, latency_buckets::text as buckets
           from provider_call_hours where provider_id = $1 and hour >= $2`,
        [providerId, since],
      );
      return r.rows.map((x) => ({
        hour: new Date(Number(x.epoch) * 1000), subject: x.subject, outcome: x.outcome, n: Number(x.n),
        latencyBuckets: x.buckets === null ? null : x.buckets.slice(1, -1).split(',').map(Number),
      }));
    },

    /** Deletes at most `batch` calls that started before `before`, oldest first (an index range, no scan); answers how many. */
    async pruneCallsBefore(before: Date, batch: number): Promise<number> {
      const r = await db.query(
        `delete from provider_calls where id in (
           select id from provider_calls where at < $1 order by at, id limit $2)`,
        [before, batch],
      );
      return r.rowCount;
    },

    async pruneHoursBefore(before: Date): Promise<number> {
      return (await db.query('delete from provider_call_hours where hour < $1', [before])).rowCount;
    },
  };
}
export type ProviderCallsRepository = ReturnType<typeof providerCallsRepository>;
