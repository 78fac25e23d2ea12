/**
 * A worker that freezes (SIGSTOP: a long GC pause, a frozen VM, a laptop lid) while it runs syncs,
 * for longer than the lease, then wakes up (SIGCONT). Meanwhile the other worker's reaper has
 * queued its syncs again and run them to the end. The frozen worker's late run must not count:
 * SPEC section 5 allows one sync per connection at a time, and a sync record reports what happened
 * once. When it wakes, the finished results stay as the live worker wrote them.
 *
 * Needs TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/processes.ts';
import { startCluster, type Cluster, type SyncDbRow } from './cluster.ts';

/** How long the woken worker gets to do whatever it still does (its calls take 2 s, time-outs 10 s). */
const SETTLE_MS = 15_000;

describe.skipIf(!process.env.TEST_DATABASE_URL)('crash safety: a worker frozen past its lease, then woken', () => {
  let cl: Cluster;

  beforeAll(async () => {
    cl = await startCluster({ users: 1, connectionsPerUser: 4, fast: new Set(), workers: ['worker-a', 'worker-b'], workerConcurrency: 2 });
  }, 120_000);

  afterAll(async () => {
    await cl?.stop();
  });

  it("the woken worker's stale run does not overwrite the re-run's result or the connection's state", async () => {
    const before = new Set((await cl.allSyncs()).map((s) => s.id));
    await cl.advanceClock('PT6H');
    const [frozenName, frozenSyncs] = await waitUntil('a worker running scheduled syncs', 30_000, async () => {
      const busiest = [...(await cl.heldByWorker()).entries()].sort((a, b) => b[1].length - a[1].length)[0];
      return busiest !== undefined && busiest[1].length > 0 ? busiest : undefined;
    }, { intervalMs: 50, diagnose: cl.describeState });
    const frozen = cl.workers.get(frozenName);
    const liveName = frozenName === 'worker-a' ? 'worker-b' : 'worker-a';
    if (frozen === undefined) throw new Error(`unknown worker ${frozenName}`);
    process.kill(frozen.pid, 'SIGSTOP');
    let woken = false;
    try {
      // The live worker reaps the frozen worker's syncs once their lease runs out, and runs them.
      const by = await cl.waitRoundDone(before, 'the live worker to finish every due sync while the other is frozen');
      const rerun = [...by.values()].flat().filter((s) => frozenSyncs.includes(s.id));
      expect(rerun.length).toBeGreaterThan(0);
      for (const s of rerun) expect({ id: s.id, fetchStatus: s.fetch_status, attempts: s.attempts }).toEqual({ id: s.id, fetchStatus: 'success', attempts: 2 });
      const snapshot = (rows: SyncDbRow[]) =>
        rows.filter((s) => frozenSyncs.includes(s.id)).map((s) => ({ id: s.id, state: s.state, fetchStatus: s.fetch_status, finishedAt: s.finished_at?.toISOString(), counts: s.counts, errorDetail: s.error_detail }));
      const settled = snapshot(await cl.allSyncs());
      const statusBefore = await Promise.all(cl.conns.map((c) => cl.connectionJson(c)));
      for (const c of statusBefore) expect(c, String(c.id)).toMatchObject({ status: 'ok', error: null });

      process.kill(frozen.pid, 'SIGCONT');
      woken = true;
      await new Promise((r) => setTimeout(r, SETTLE_MS));

      // The woken worker wrote nothing over the finished syncs it had lost (soft: report every consequence at once).
      const lateWrites = (await cl.resultWrites()).filter((w) => frozenSyncs.includes(w.sync_id) && w.app !== liveName);
      expect.soft(lateWrites.map((w) => ({ sync: w.sync_id, by: w.app, fetchStatus: w.fetch_status })), 'a worker that lost its lease wrote a sync result').toEqual([]);
      expect.soft(snapshot(await cl.allSyncs()), 'finished syncs changed after the frozen worker woke').toEqual(settled);
      for (const c of cl.conns) expect.soft(await cl.connectionJson(c), `status of ${c.connectionId} after the frozen worker woke`).toMatchObject({ status: 'ok', error: null });
      await cl.expectNoDuplicatedData();
      expect(frozen.alive()).toBe(true);
    } finally {
      if (!woken) process.kill(frozen.pid, 'SIGCONT');
    }
  }, 150_000);
});
