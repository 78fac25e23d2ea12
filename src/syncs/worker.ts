/**
 * A sync worker: claims due syncs from the queue (the syncs table, claim.ts) with bounded
 * concurrency overall and per provider, ticks the scheduler (scheduler.ts), and gives syncs whose
 * process died back to the queue (reaper.ts). Any number of workers can run against one
 * database; the scheduler's row locks and the claim keep them apart.
 *
 * The claim loop takes as many syncs as it has free slots, in one statement; it looks again as
 * soon as a sync finishes, after its own scheduler tick or reaper pass queued something, and
 * otherwise every claimPollMs.
 */
import type { SyncEngine } from './engine.ts';
import { DEFAULT_TIMERS, type Timers } from '../timers.ts';

export const SCHEDULER_TICK_MS = DEFAULT_TIMERS.schedulerTickMs;
/** At most this many syncs of one provider run at once across all workers. */
export const PER_PROVIDER_CONCURRENCY = 50;

export interface WorkerDeps {
  engine: SyncEngine;
  concurrency: number;
  /** Scheduler tick, reaper and claim intervals (default DEFAULT_TIMERS). */
  timers?: Pick<Timers, 'schedulerTickMs' | 'reaperIntervalMs' | 'claimPollMs'>;
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
  const timers = deps.timers ?? DEFAULT_TIMERS;
  let stopping = false;
  const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

  // The claim loop. `nudge` wakes it; a nudge while it is busy is remembered, not lost.
  const running = new Set<Promise<void>>();
  let nudged = false;
  let wake: (() => void) | null = null;
  const nudge = (): void => {
    nudged = true;
    wake?.();
  };
  const rest = (ms: number): Promise<void> => new Promise<void>((resolve) => {
    if (nudged || stopping) return resolve();
    const timer = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  }).then(() => {
    wake = null;
  });
  const claimLoop = (async () => {
    while (!stopping) {
      nudged = false;
      const free = deps.concurrency - running.size;
      let claimed = 0;
      if (free > 0) {
        try {
          const syncs = await deps.engine.claimDue(free, PER_PROVIDER_CONCURRENCY);
          claimed = syncs.length;
          for (const sync of syncs) {
            const run: Promise<void> = deps.engine.runLeased(sync).catch(
              (err: unknown) => deps.log.error({ syncId: sync.id, err: describe(err) }, 'a sync run failed'),
            ).finally(() => {
              running.delete(run);
              nudge();
            });
            running.add(run);
          }
        } catch (err) {
          deps.log.error({ err: describe(err) }, 'claiming syncs failed; will try again');
        }
      }
      // Slots left and the queue gave all we asked for: there may be more, look again at once.
      if (claimed > 0 && claimed === free) continue;
      // Full, or nothing (more) due: wait for a finished sync, a tick or the poll interval.
      await rest(timers.claimPollMs);
    }
  })();

  const inFlight = new Set<Promise<void>>();
  /** Runs fn every `everyMs`, never two at once; each loop runs independently of the others. */
  const loop = (name: string, everyMs: number, fn: () => Promise<unknown>): NodeJS.Timeout => {
    let busy = false;
    const timer = setInterval(() => {
      if (stopping || busy) return;
      busy = true;
      const run = fn().then(
        () => undefined,
        (err: unknown) => deps.log.error({ err: describe(err) }, `${name} failed; will try again`),
      ).finally(() => {
        busy = false;
        inFlight.delete(run);
      });
      inFlight.add(run);
    }, everyMs);
    timer.unref();
    return timer;
  };
  const tick = loop('scheduler tick', timers.schedulerTickMs, async () => {
    await deps.beforeTick?.();
    const queued = await deps.engine.enqueueDue();
    if (queued.length > 0) {
      deps.log.info({ queued: queued.length }, 'scheduled syncs queued');
      nudge();
    }
  });
  const reaper = loop('reaper', timers.reaperIntervalMs, async () => {
    if ((await deps.engine.reap()) > 0) nudge();
  });
  const others = (deps.loops ?? []).map((l) => loop(l.name, l.everyMs, l.run));
  deps.log.info({ concurrency: deps.concurrency }, 'sync worker started');

  return {
    async stop() {
      stopping = true;
      nudge();
      clearInterval(tick);
      clearInterval(reaper);
      for (const t of others) clearInterval(t);
      await claimLoop;
      await Promise.all([...inFlight, ...running]);
    },
  };
}
