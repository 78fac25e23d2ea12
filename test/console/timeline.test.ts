/**
 * The timeline's pure rules: one total order over all sources (time, then kind, then id), the
 * bound each source is read after for a cursor, and cursors that survive a round trip. Paging
 * with these rules gives every entry exactly once, even when entries of several kinds share a time.
 */
import { describe, expect, it } from 'vitest';
import {
  boundFor, compareEntries, decodeCursor, encodeCursor, mergeTimeline, parseKinds, TIMELINE_KINDS,
  type SourceBound, type TimelineCursor, type TimelineEntry, type TimelineKind,
} from '../../src/console/timeline.ts';

const T0 = Date.parse('2026-01-14T09:00:00.000Z');
const entry = (kind: TimelineKind, id: string, offsetMs: number): TimelineEntry => ({ at: new Date(T0 + offsetMs), kind, id, summary: '', detail: {} });

/** A source as a repository reads it: rows after the bound, newest first, at most `limit`. */
function read(rows: TimelineEntry[], b: SourceBound, limit: number): TimelineEntry[] {
  return rows
    .filter((r) => b.before === null || r.at < b.before || (r.at.getTime() === b.before.getTime() && (b.tie === 'all' || (b.tie === 'smaller_id' && r.id < b.id))))
    .sort(compareEntries)
    .slice(0, limit);
}

describe('the connection timeline', () => {
  // Many entries at the same few instants, of every kind: the hard case for a cursor.
  const sources = new Map<TimelineKind, TimelineEntry[]>(TIMELINE_KINDS.map((k, i) => [k, Array.from({ length: 7 }, (_, j) => entry(k, `${k}-${(j * 7 + i) % 10}${j}`, -Math.floor(j / 3) * 1000))]));
  const all = [...sources.values()].flat().sort(compareEntries);

  it('orders newest first, then by kind, then by id descending', () => {
    const a = entry('sync', 'a', 0);
    expect(compareEntries(entry('journey', 'z', -1), a)).toBeGreaterThan(0);
    expect(compareEntries(entry('journey', 'a', 0), a)).toBeLessThan(0);
    expect(compareEntries(entry('sync', 'b', 0), a)).toBeLessThan(0);
  });

  for (const limit of [1, 2, 3, 5, 8, 50]) {
    it(`pages through every entry exactly once, ${limit} at a time`, () => {
      const seen: TimelineEntry[] = [];
      let cursor: TimelineCursor | null = null;
      for (let pages = 0; pages < 100; pages += 1) {
        const c: TimelineCursor | null = cursor;
        const page = mergeTimeline(TIMELINE_KINDS.map((k) => read(sources.get(k) ?? [], boundFor(k, c), limit + 1)), limit);
        seen.push(...page.entries);
        if (page.next === null) break;
        cursor = decodeCursor(encodeCursor(page.next));
      }
      expect(seen.map((e) => `${e.kind}:${e.id}`)).toEqual(all.map((e) => `${e.kind}:${e.id}`));
    });
  }

  it('refuses cursors and kinds it did not make', () => {
    expect(decodeCursor('not a cursor')).toBeNull();
    expect(decodeCursor(Buffer.from('["2026-01-14T09:00:00Z","gossip","1"]').toString('base64url'))).toBeNull();
    expect(decodeCursor(Buffer.from('{"at":1}').toString('base64url'))).toBeNull();
    expect(parseKinds('sync, webhook_event')).toEqual(['sync', 'webhook_event']);
    expect(parseKinds(undefined)).toEqual([...TIMELINE_KINDS]);
    expect(parseKinds('sync,gossip')).toBeNull();
  });
});
