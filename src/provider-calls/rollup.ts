/**
 * The pure rules of the hourly rollup (table provider_call_hours): which latency bucket a call
 * falls in, how an hour's rows become a health bucket, and percentiles read from a histogram.
 * No I/O.
 */
import { HOUR_MS } from '../time.ts';

/**
 * Upper bounds (inclusive) of the latency histogram's buckets, in milliseconds; one more bucket
 * holds everything slower. Changing them needs a migration of stored rollups: append only.
 */
export const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10_000, 20_000, 30_000, 60_000] as const;
const BUCKETS = LATENCY_BUCKETS_MS.length + 1;

/** The rollup's outcome of a successful call. */
export const CALL_OK = 'ok';
/** Sync outcomes that count as successes in a health bucket. */
const SYNC_SUCCESSES = new Set(['success', 'partial']);

export const hourOf = (at: Date): Date => new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS);

export function latencyBucket(latencyMs: number): number {
  const i = LATENCY_BUCKETS_MS.findIndex((bound) => latencyMs <= bound);
  return i === -1 ? LATENCY_BUCKETS_MS.length : i;
}

export const emptyHistogram = (): number[] => new Array<number>(BUCKETS).fill(0);

/**
 * The latency below which a share `q` (0..1) of the calls fall, interpolated linearly inside its
 * bucket (the open last bucket answers its lower bound); null without calls. Resolution is the
 * bucket's width: this is an estimate, as Prometheus's histogram_quantile is.
 */
export function percentileMs(histogram: readonly number[], q: number): number | null {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < histogram.length; i += 1) {
    const n = histogram[i] ?? 0;
    if (n > 0 && seen + n >= rank) {
      const lower = i === 0 ? 0 : (LATENCY_BUCKETS_MS[i - 1] ?? 0);
      const upper = LATENCY_BUCKETS_MS[i];
      if (upper === undefined) return lower;
      return Math.round(lower + ((upper - lower) * (rank - seen)) / n);
    }
    seen += n;
  }
  return LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1] ?? null;
}

export interface HourRow {
  hour: Date;
  subject: 'call' | 'sync';
  outcome: string;
  n: number;
  latencyBuckets: number[] | null;
}

export interface HealthBucket {
  hour: string;
  syncs: number;
  successes: number;
  /** Failed syncs by the provider's error kind, or by fetch status when Mooring decided without calling it. */
  failures: Record<string, number>;
  calls: number;
  /** Failed calls by error kind. */
  callErrors: Record<string, number>;
  p50LatencyMs: number | null;
  p95LatencyMs: number | null;
}

/** One bucket per hour from `from` (an hour) for `hours` hours, oldest first, empty hours included. */
export function healthBuckets(rows: readonly HourRow[], from: Date, hours: number): HealthBucket[] {
  const byHour = new Map<number, HourRow[]>();
  for (const r of rows) {
    const list = byHour.get(r.hour.getTime());
    if (list === undefined) byHour.set(r.hour.getTime(), [r]);
    else list.push(r);
  }
  return Array.from({ length: hours }, (_, i) => {
    const hour = new Date(from.getTime() + i * HOUR_MS);
    const bucket: HealthBucket = { hour: hour.toISOString(), syncs: 0, successes: 0, failures: {}, calls: 0, callErrors: {}, p50LatencyMs: null, p95LatencyMs: null };
    const histogram = emptyHistogram();
    for (const r of byHour.get(hour.getTime()) ?? []) {
      if (r.subject === 'sync') {
        bucket.syncs += r.n;
        if (SYNC_SUCCESSES.has(r.outcome)) bucket.successes += r.n;
        else bucket.failures[r.outcome] = (bucket.failures[r.outcome] ?? 0) + r.n;
      } else {
        bucket.calls += r.n;
        if (r.outcome !== CALL_OK) bucket.callErrors[r.outcome] = (bucket.callErrors[r.outcome] ?? 0) + r.n;
        (r.latencyBuckets ?? []).forEach((n, j) => {
          if (j < histogram.length) histogram[j] = (histogram[j] ?? 0) + n;
        });
      }
    }
    bucket.p50LatencyMs = percentileMs(histogram, 0.5);
    bucket.p95LatencyMs = percentileMs(histogram, 0.95);
    return bucket;
  });
}
