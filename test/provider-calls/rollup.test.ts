/** The hourly rollup's pure rules: latency buckets, percentiles read from a histogram, hourly health buckets. */
import { describe, expect, it } from 'vitest';
import { emptyHistogram, healthBuckets, latencyBucket, LATENCY_BUCKETS_MS, percentileMs } from '../../src/provider-calls/rollup.ts';

const histogramOf = (latencies: number[]): number[] => {
  const h = emptyHistogram();
  for (const ms of latencies) h[latencyBucket(ms)] = (h[latencyBucket(ms)] ?? 0) + 1;
  return h;
};

describe('provider call latency from the rollup', () => {
  it('puts a latency in the first bucket whose bound holds it, and anything slower than the last bound in the open bucket', () => {
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(5)).toBe(0);
    expect(latencyBucket(6)).toBe(1);
    expect(latencyBucket(120_000)).toBe(LATENCY_BUCKETS_MS.length);
  });

  it('estimates p50 and p95 within the bucket that holds them, and answers null without calls', () => {
    const latencies = [...Array.from({ length: 90 }, () => 40), ...Array.from({ length: 10 }, () => 900)];
    const h = histogramOf(latencies);
    const p50 = percentileMs(h, 0.5) ?? -1;
    const p95 = percentileMs(h, 0.95) ?? -1;
    expect(p50).toBeGreaterThan(25);
    expect(p50).toBeLessThanOrEqual(50);
    expect(p95).toBeGreaterThan(750);
    expect(p95).toBeLessThanOrEqual(1000);
    expect(percentileMs(emptyHistogram(), 0.5)).toBeNull();
  });

  it('makes one bucket per hour, oldest first, with empty hours and syncs split into successes and failures by kind', () => {
    const from = new Date('2026-01-14T09:00:00.000Z');
    const at10 = new Date('2026-01-14T10:00:00.000Z');
    const buckets = healthBuckets([
      { hour: at10, subject: 'sync', outcome: 'success', n: 3, latencyBuckets: null },
      { hour: at10, subject: 'sync', outcome: 'partial', n: 1, latencyBuckets: null },
      { hour: at10, subject: 'sync', outcome: 'rate_limited', n: 2, latencyBuckets: null },
      { hour: at10, subject: 'call', outcome: 'ok', n: 10, latencyBuckets: histogramOf(Array.from({ length: 10 }, () => 100)) },
      { hour: at10, subject: 'call', outcome: 'rate_limited', n: 2, latencyBuckets: histogramOf([20, 20]) },
    ], from, 3);
    expect(buckets.map((b) => b.hour)).toEqual(['2026-01-14T09:00:00.000Z', '2026-01-14T10:00:00.000Z', '2026-01-14T11:00:00.000Z']);
    expect(buckets[0]).toMatchObject({ syncs: 0, calls: 0, p50LatencyMs: null });
    expect(buckets[1]).toMatchObject({ syncs: 6, successes: 4, failures: { rate_limited: 2 }, calls: 12, callErrors: { rate_limited: 2 } });
    expect(buckets[1]?.p95LatencyMs).toBeLessThanOrEqual(100);
  });
});
