/**
 * Crash safety with real processes on PostgreSQL (SPEC sections 1 and 5): an API process and two
 * sync workers (`node src/main.ts api|worker`) against one database. A worker is SIGKILLed while it
 * runs scheduled syncs; the lease runs out, the surviving worker's reaper queues them again and
 * the survivor runs them: none stays running, none is lost, none runs twice, no connection ever
 * has two syncs running, no transaction is stored twice. Then the killed worker is restarted, a
 * provider outage turns syncs into errors without stopping any worker, and the next scheduled
 * syncs bring every connection back to ok.
 *
 * Needs TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandbox } from '../helpers/moneyhub.ts';
import { waitUntil } from '../helpers/processes.ts';
import { MODELO_ID, overlappingRuns, startCluster, type Cluster } from './cluster.ts';

/** Worker concurrency: low, so both workers are busy and some syncs wait queued behind them. */
const WORKER_CONCURRENCY = 2;

describe.skipIf(!process.env.TEST_DATABASE_URL)('crash safety: an API process and two workers on PostgreSQL', () => {
  let cl: Cluster;
  /** Scheduled syncs each connection has been through so far. */
  let roundsDone = 0;
  /** The worker the first test kills. */
  let killed = '';

  beforeAll(async () => {
    // 8 connections: 2 stay user_ok, 6 become user_slow (every bank call takes 2 s).
    cl = await startCluster({ users: 2, connectionsPerUser: 4, fast: new Set([0, 4]), workers: ['worker-a', 'worker-b'], workerConcurrency: WORKER_CONCURRENCY });
  }, 120_000);

  afterAll(async () => {
    await cl?.stop();
  });

  const liveProcesses = () => [cl.api, ...cl.workers.values()].filter((p) => p.name !== killed);

  it('a worker SIGKILLed mid-sync: its syncs are reaped and finished by the other worker, exactly once each', async () => {
    const before = new Set((await cl.allSyncs()).map((s) => s.id));
    expect(before.size).toBe(cl.conns.length); // the first sync (ADD) of each connect journey
    await cl.advanceClock('PT6H');

    // Wait until both workers run syncs and one holds a full load mid-run, then SIGKILL that one.
    const [victimName, victimSyncs] = await waitUntil('both workers running scheduled syncs (the scheduler tick runs every 5 s)', 30_000, async () => {
      const by = await cl.heldByWorker();
      const busiest = [...by.entries()].sort((a, b) => b[1].length - a[1].length)[0];
      return busiest !== undefined && busiest[1].length >= WORKER_CONCURRENCY && by.size >= 2 ? busiest : undefined;
    }, { intervalMs: 50, diagnose: cl.describeState });
    killed = victimName;
    const victim = cl.workers.get(victimName);
    const survivorName = victimName === 'worker-a' ? 'worker-b' : 'worker-a';
    const survivor = cl.workers.get(survivorName);
    if (victim === undefined || survivor === undefined) throw new Error(`unknown worker ${victimName}`);
    const exit = await victim.stop('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');

    // Right after the crash its syncs are still marked running: only their lease can free them.
    const stillRunning = await cl.db.query<{ id: string }>(`select id::text as id from syncs where state = 'running' and id::text = any($1)`, [victimSyncs]);
    expect(stillRunning.rowCount, 'the killed worker finished its syncs before dying; the test did not crash it mid-run').toBeGreaterThan(0);
    const interrupted = stillRunning.rows.map((r) => r.id);

    const by = await cl.waitRoundDone(before, 'every due connection to finish its scheduled sync after the crash');
    roundsDone += 1;

    // Exactly one new sync per due connection: the scheduled one, finished, successful.
    for (const c of cl.conns) {
      const list = by.get(c.connectionId) ?? [];
      expect(list.map((s) => ({ action: s.action, method: s.method, attended: s.attended, state: s.state, fetchStatus: s.fetch_status })), `new syncs of ${c.connectionId}`).toEqual([
        { action: 'auto-update', method: 'UPDATE', attended: false, state: 'done', fetchStatus: 'success' },
      ]);
    }
    // The interrupted ones were claimed twice — by the dead worker, then by the survivor — and finished by the survivor.
    const history = await cl.transitions();
    const all = [...by.values()].flat();
    for (const id of interrupted) {
      const steps = history.filter((t) => t.sync_id === id).map((t) => `${t.from_state ?? '-'}>${t.to_state}@${t.app}`);
      expect(steps[0], `history of interrupted sync ${id}`).toMatch(/^->queued@worker-[ab]$/); // by whichever scheduler tick got it
      expect(steps.slice(1), `history of interrupted sync ${id}`).toEqual([
        `queued>running@${victimName}`,
        `running>queued@${survivorName}`, // the survivor's reaper, after the lease ran out
        `queued>running@${survivorName}`,
        `running>done@${survivorName}`,
      ]);
      expect(all.find((s) => s.id === id)?.attempts).toBe(2);
    }
    // Its result was written once, by the survivor.
    const writes = (await cl.resultWrites()).filter((w) => interrupted.includes(w.sync_id));
    expect(writes.map((w) => [w.sync_id, w.app, w.fetch_status]).sort()).toEqual(interrupted.map((id) => [id, survivorName, 'success']).sort());
    expect(survivor.output()).toMatch(/a sync was interrupted/);
    expect(overlappingRuns(history), 'a connection had two syncs running at once').toEqual([]);
    for (const p of liveProcesses()) expect({ name: p.name, alive: p.alive() }).toEqual({ name: p.name, alive: true });

    for (const c of cl.conns) expect(await cl.connectionJson(c), c.connectionId).toMatchObject({ status: 'ok', error: null });
    await cl.expectNoDuplicatedData();
    // Lease 30 s + reaper every 10 s + a 2 s-per-call sync: well within the bound.
  }, 150_000);

  it('the killed worker restarts and joins in; a provider outage fails syncs as errors while every worker keeps running', async () => {
    const rejoined = await cl.startWorker('worker-a2');
    const before = new Set((await cl.allSyncs()).map((s) => s.id));
    // Which worker claims a sync is a race; to see the restarted one take part, the others pause
    // (SIGSTOP, while nothing is due, so they hold no locks) until it has claimed a sync of this round.
    const others = [...cl.workers.values()].filter((p) => p.alive() && p.name !== rejoined.name);
    for (const p of others) process.kill(p.pid, 'SIGSTOP');
    try {
      await cl.advanceClock('PT6H');
      await waitUntil('the restarted worker to claim a sync of the new round', 30_000, async () =>
        (await cl.transitions()).some((t) => t.app === rejoined.name && t.to_state === 'running' && !before.has(t.sync_id)), { intervalMs: 50, diagnose: cl.describeState });
    } finally {
      for (const p of others) process.kill(p.pid, 'SIGCONT');
    }

    // Wait until the round is under way with syncs still waiting for a worker, then declare the outage.
    await waitUntil('scheduled syncs running with others queued behind them', 30_000, async () => {
      const all = [...(await cl.newSyncs(before)).values()].flat();
      return all.filter((s) => s.state === 'running').length >= 1 && all.filter((s) => s.state === 'queued').length >= 1;
    }, { intervalMs: 50, diagnose: cl.describeState });
    const clock = await sandbox(cl.baseUrl, 'GET', '/sandbox/clock');
    const until = new Date(Date.parse(String(clock.json.now)) + 3_600_000).toISOString();
    const outage = await sandbox(cl.baseUrl, 'POST', `/sandbox/providers/${MODELO_ID}/outage`, { until });
    expect(outage.status).toBe(200);
    // These had not started when the outage began: every call they make meets it.
    const queuedAtOutage = [...(await cl.newSyncs(before)).values()].flat().filter((s) => s.state === 'queued').map((s) => s.id);

    const by = await cl.waitRoundDone(before, 'every due connection to finish its scheduled sync during the outage');
    roundsDone += 1;
    const round = [...by.values()].flat();
    for (const c of cl.conns) expect((by.get(c.connectionId) ?? []).map((s) => s.action), `new syncs of ${c.connectionId}`).toEqual(['auto-update']);
    if (queuedAtOutage.length === 0) throw new Error('every sync started before the outage was declared; the test could not observe one meeting it');
    for (const id of queuedAtOutage) {
      const s = round.find((x) => x.id === id);
      expect({ id, fetchStatus: s?.fetch_status, detail: typeof s?.error_detail }).toEqual({ id, fetchStatus: 'error', detail: 'string' });
    }
    for (const c of cl.conns) {
      const s = (by.get(c.connectionId) ?? [])[0];
      if (s?.fetch_status === 'error') expect(await cl.connectionJson(c), c.connectionId).toMatchObject({ status: 'error', error: 'sync_error' });
    }
    // Nobody crashed: the outage cost syncs, not processes.
    for (const p of liveProcesses()) {
      expect({ name: p.name, alive: p.alive() }).toEqual({ name: p.name, alive: true });
      expect(p.output(), p.name).not.toMatch(/uncaught|unhandled|"level":60|failed to start/i);
    }
    // The restarted worker took part.
    const history = await cl.transitions();
    expect(history.some((t) => t.app === rejoined.name && t.to_state === 'running' && !before.has(t.sync_id))).toBe(true);
    expect(overlappingRuns(history)).toEqual([]);
  }, 150_000);

  it('after the outage the next scheduled syncs succeed: every connection is ok, one scheduled sync per due slot', async () => {
    const before = new Set((await cl.allSyncs()).map((s) => s.id));
    await cl.advanceClock('PT6H'); // past the outage and to the next due slot
    const by = await cl.waitRoundDone(before, 'every due connection to finish its scheduled sync after the outage');
    roundsDone += 1;
    for (const c of cl.conns) {
      expect((by.get(c.connectionId) ?? []).map((s) => [s.action, s.fetch_status]), c.connectionId).toEqual([['auto-update', 'success']]);
      expect(await cl.connectionJson(c), c.connectionId).toMatchObject({ status: 'ok', error: null });
    }
    // Over the whole file: one connect sync plus exactly one scheduled sync per due slot, nothing left active.
    const totals = await cl.db.query<{ connection_id: string; scheduled: string; first: string; other: string; active: string }>(
      `select connection_id,
              count(*) filter (where action = 'auto-update' and method = 'UPDATE' and not attended)::text as scheduled,
              count(*) filter (where method = 'ADD')::text as first,
              count(*) filter (where method <> 'ADD' and not (action = 'auto-update' and not attended))::text as other,
              count(*) filter (where state <> 'done')::text as active
         from syncs group by connection_id`,
    );
    expect(totals.rows).toHaveLength(cl.conns.length);
    for (const row of totals.rows) expect(row, row.connection_id).toMatchObject({ scheduled: String(roundsDone), first: '1', other: '0', active: '0' });
    expect(overlappingRuns(await cl.transitions())).toEqual([]);
    await cl.expectNoDuplicatedData();
    for (const p of liveProcesses()) expect({ name: p.name, alive: p.alive() }).toEqual({ name: p.name, alive: true });
  }, 150_000);
});
