/**
 * A sync worker: takes sync jobs from the queue with bounded concurrency overall and per provider,
 * ticks the scheduler, and sends syncs whose process died back to the queue. Any number of workers
 * can run against one database; the scheduler's row locks and the sync claim keep them apart.
 */
import type { PgBoss } from 'pg-boss';
import { SYNC_QUEUE } from '../jobs/boss.ts';
import type { SyncEngine, SyncQueue } from './engine.ts';
import { DEFAULT_TIMERS, type Timers } from '../timers.ts';

export const SCHEDULER_TICK_MS = DEFAULT_TIMERS.schedulerTickMs;
/** At most this many syncs of one provider run at once across all workers. */
export const PER_PROVIDER_CONCURRENCY = 50;

export function bossSyncQueue(boss: PgBoss): SyncQueue {
  return {
    async send(syncId, providerId) {
      await boss.send(SYNC_QUEUE, { syncId }, { group: { id: providerId } });
    },
    async sendMany(jobs) {
      if (jobs.length > 0) await boss.insert(SYNC_QUEUE, jobs.map((j) => ({ data: { syncId: j.syncId }, group: { id: j.providerId } })));
    },
  };
}

export interface WorkerDeps {
  boss: PgBoss;
  engine: SyncEngine;
  concurrency: number;
  /** Scheduler tick and reaper intervals (default DEFAULT_TIMERS). */
  timers?: Pick<Timers, 'schedulerTickMs' | 'reaperIntervalMs'>;
  /** Called before each scheduler tick (e.g. to pick up a moved sandbox clock). */
  beforeTick?: () => Promise<void>;
  /** Other periodic work of a worker (webhook deliveries, time-driven events). */
  loops?: { name: string; everyMs: number; run: () => Promise<unknown> }[];
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export interface Worker {
  stop(): Promise<void>;
}

export async function startWorker(deps: WorkerDeps): Promise<Worker> {
  await deps.boss.work<{ syncId: string }>(
    SYNC_QUEUE,
    // Each fetch loop would otherwise sleep up to a polling interval between jobs even with a backlog:
    // poll often, and fetch back to back while the queue holds ready jobs.
    { localConcurrency: deps.concurrency, groupConcurrency: PER_PROVIDER_CONCURRENCY, batchSize: 1, pollingIntervalSeconds: 0.5, burstWhenReadyExceeds: 1 },
    async (jobs) => {
      for (const job of jobs) await deps.engine.runQueued(job.data.syncId);
    },
  );

  let stopping = false;
  const inFlight = new Set<Promise<void>>();
  /** Runs fn every `everyMs`, never two at once; each loop runs independently of the others. */
  const loop = (name: string, everyMs: number, fn: () => Promise<unknown>): NodeJS.Timeout => {
    let busy = false;
    const timer = setInterval(() => {
      if (stopping || busy) return;
      busy = true;
      const run = fn().then(
        () => undefined,
        (err: unknown) => deps.log.error({ err: err instanceof Error ? err.message : String(err) }, `${name} failed; will try again`),
      ).finally(() => {
        busy = false;
        inFlight.delete(run);
      });
      inFlight.add(run);
    }, everyMs);
    timer.unref();
    return timer;
  };
  const tick = loop('scheduler tick', (deps.timers ?? DEFAULT_TIMERS).schedulerTickMs, async () => {
    await deps.beforeTick?.();
    const queued = await deps.engine.enqueueDue();
    if (queued.length > 0) deps.log.info({ queued: queued.length }, 'scheduled syncs queued');
  });
  const reaper = loop('reaper', (deps.timers ?? DEFAULT_TIMERS).reaperIntervalMs, () => deps.engine.reap());
  const others = (deps.loops ?? []).map((l) => loop(l.name, l.everyMs, l.run));
  deps.log.info({ concurrency: deps.concurrency }, 'sync worker started');

  return {
    async stop() {
      stopping = true;
      clearInterval(tick);
      clearInterval(reaper);
      for (const t of others) clearInterval(t);
      await Promise.all(inFlight);
      await deps.boss.offWork(SYNC_QUEUE, { wait: true });
    },
  };
}
