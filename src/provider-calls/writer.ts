/**
 * The provider call log of one process: recorded calls (and finished syncs, for the hourly
 * rollup) are buffered in memory and written in batches — one multi-row insert and one rollup
 * upsert — every FLUSH_EVERY_MS, once FLUSH_AT_ROWS are waiting, and on close. Never on a sync's
 * transaction, never one insert per call.
 *
 * The log is an observer: a database failure while writing it is logged and the rows kept for the
 * next flushes (while fewer than MAX_BUFFERED_ROWS wait; beyond that the failed batch is dropped);
 * it never fails a sync, and nothing about it is ever blamed on a provider.
 */
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { DAY_MS } from '../time.ts';
import { runWithCallContext, type CallSink, type CallWho, type ProviderCallRow } from './context.ts';
import { providerCallsRepository, type HourIncrement } from './repository.ts';
import { CALL_OK, emptyHistogram, hourOf, latencyBucket } from './rollup.ts';

export const FLUSH_EVERY_MS = 1_000;
export const FLUSH_AT_ROWS = 1_000;
/** Rows kept waiting at most (a database outage): beyond this, the oldest batch is dropped. */
export const MAX_BUFFERED_ROWS = 50_000;
/** Rows deleted per statement when pruning, and statements per pruning pass at most. */
const PRUNE_BATCH = 5_000;
const PRUNE_BATCHES_PER_PASS = 40;
/** The rollup is kept at least this long (the health API's longest window). */
const HOURS_RETENTION_DAYS = 31;

/** Told about every recorded call and every finished sync (Prometheus counters). */
export interface CallLogObserver {
  call?(row: ProviderCallRow): void;
  syncFinished?(providerId: string, outcome: string): void;
}

export interface ProviderCallLogDeps {
  db: Db;
  clock: Clock;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** False: nothing is recorded (no context, no rows, no rollup); syncs still reach the observer. */
  enabled: boolean;
  retentionDays: number;
  observer?: CallLogObserver;
  flushEveryMs?: number;
}

export interface ProviderCallLog extends CallSink {
  /** Runs adapter work with its provider calls recorded as made by `who`. */
  run<T>(who: CallWho, fn: () => Promise<T>): Promise<T>;
  /** A sync of `providerId` ended: outcome `success`, `partial`, the provider's error kind, or the fetch status Mooring decided alone. */
  syncFinished(providerId: string, outcome: string, at: Date): void;
  /** Writes what is waiting now (the admin API calls it to read its own process's writes). */
  flush(): Promise<void>;
  /** Deletes calls older than the retention, in bounded batches; answers how many. */
  prune(): Promise<number>;
  close(): Promise<void>;
}

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export function providerCallLog(deps: ProviderCallLogDeps): ProviderCallLog {
  const repo = providerCallsRepository(deps.db);
  let calls: ProviderCallRow[] = [];
  let hours = new Map<string, HourIncrement>();
  let flushing: Promise<void> = Promise.resolve();

  const addHour = (providerId: string, at: Date, subject: 'call' | 'sync', outcome: string, latencyMs: number | null): void => {
    const hour = hourOf(at);
    const key = `${providerId}\u0000${hour.toISOString()}\u0000${subject}\u0000${outcome}`;
    let inc = hours.get(key);
    if (inc === undefined) {
      inc = { providerId, hour, subject, outcome, n: 0, latencyBuckets: latencyMs === null ? null : emptyHistogram() };
      hours.set(key, inc);
    }
    inc.n += 1;
    if (latencyMs !== null && inc.latencyBuckets !== null) {
      const i = latencyBucket(latencyMs);
      inc.latencyBuckets[i] = (inc.latencyBuckets[i] ?? 0) + 1;
    }
  };

  const pending = (): number => calls.length + hours.size;

  async function writeOnce(): Promise<void> {
    if (pending() === 0) return;
    const batch = calls;
    const increments = [...hours.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
    const keptHours = hours;
    calls = [];
    hours = new Map();
    try {
      await deps.db.transaction(async (tx) => {
        const txRepo = providerCallsRepository(tx);
        await txRepo.insertCalls(batch);
        await txRepo.addToHours(increments);
      });
    } catch (err) {
      // Kept for the next flush when there is room; a longer outage loses the oldest rows, never a sync.
      if (batch.length + calls.length <= MAX_BUFFERED_ROWS) {
        calls = [...batch, ...calls];
        for (const [k, v] of keptHours) {
          const now = hours.get(k);
          if (now === undefined) hours.set(k, v);
          else {
            now.n += v.n;
            if (now.latencyBuckets !== null && v.latencyBuckets !== null) now.latencyBuckets = now.latencyBuckets.map((n, i) => n + (v.latencyBuckets?.[i] ?? 0));
          }
        }
        deps.log.warn({ rows: batch.length, err: describe(err) }, 'writing the provider call log failed (Mooring, not a provider); retrying at the next flush');
      } else {
        deps.log.error({ rows: batch.length, err: describe(err) }, 'writing the provider call log failed again; these rows are dropped');
      }
    }
  }

  const flush = (): Promise<void> => {
    flushing = flushing.then(writeOnce, writeOnce);
    return flushing;
  };

  const timer = setInterval(() => void flush(), deps.flushEveryMs ?? FLUSH_EVERY_MS);
  timer.unref();

  const callLog: ProviderCallLog = {
    now: () => deps.clock.now(),
    record(row) {
      deps.observer?.call?.(row);
      calls.push(row);
      addHour(row.providerId, row.at, 'call', row.errorKind ?? CALL_OK, row.latencyMs);
      if (calls.length >= FLUSH_AT_ROWS) void flush();
    },
    run(who, fn) {
      return deps.enabled ? runWithCallContext(callLog, who, fn) : fn();
    },
    syncFinished(providerId, outcome, at) {
      deps.observer?.syncFinished?.(providerId, outcome);
      if (deps.enabled) addHour(providerId, at, 'sync', outcome, null);
    },
    flush,
    async prune() {
      const now = deps.clock.now().getTime();
      const before = new Date(now - deps.retentionDays * DAY_MS);
      let deleted = 0;
      for (let i = 0; i < PRUNE_BATCHES_PER_PASS; i += 1) {
        const n = await repo.pruneCallsBefore(before, PRUNE_BATCH);
        deleted += n;
        if (n < PRUNE_BATCH) break;
      }
      await repo.pruneHoursBefore(new Date(now - Math.max(deps.retentionDays, HOURS_RETENTION_DAYS) * DAY_MS));
      return deleted;
    },
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
  return callLog;
}
