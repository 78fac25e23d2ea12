/**
 * Child process: Mooring without an HTTP listener, as createServer builds it, on PostgreSQL.
 *
 *   mode `worker`  a sync worker process exactly as deployed (role 'worker', job queue on): pg-boss
 *                  sync jobs at MOORING_WORKER_CONCURRENCY = <concurrency>, the scheduler tick, the
 *                  reaper, webhook deliveries and the other periodic loops of src/server.ts.
 *   mode `engine`  no worker loops (role 'api' with the job queue, app built but not listening): the
 *                  bench drives the sync engine itself — `tick` times one engine.enqueueDue() (with
 *                  the pg-boss queue, as the worker's tick runs it, or with no queue: the database
 *                  work alone), `syncOne` times one complete sync of a connection in this process.
 *
 * Banks are reached at <publicUrl> (the API child serving the sandbox banks).
 * argv: <mode> <databaseUrl> <publicUrl> <concurrency> <poolSize>
 * Operations (ipc.ts `call`): memory, tick, syncOne; jobsReset and jobs (see below).
 *
 * Instrumentation and what-ifs, by environment, both wrapping PgBoss#work (nothing else changes):
 *   BENCH_TIME_JOBS=1          time every job handler call (`jobs` answers the durations in ms)
 *   BENCH_WORK_OPTIONS=<json>  merge these options into the options src/syncs/worker.ts passes to
 *                              boss.work (e.g. {"pollingIntervalSeconds":1}; null removes an option): a
 *                              what-if experiment
 */
import { PgBoss } from 'pg-boss';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { createServer } from '../src/server.ts';
import { syncEngine } from '../src/syncs/engine.ts';
import { memorySample, reportFailure, serveParent } from './ipc.ts';
import { BENCH_ENCRYPTION_KEY } from './common.ts';

const [mode = 'worker', databaseUrl = '', publicUrl = '', concurrencyRaw = '20', poolRaw = '10'] = process.argv.slice(2);

let handlerMs: number[] = [];
const timeJobs = process.env.BENCH_TIME_JOBS === '1';
const workOptions = process.env.BENCH_WORK_OPTIONS !== undefined && process.env.BENCH_WORK_OPTIONS !== '' ? (JSON.parse(process.env.BENCH_WORK_OPTIONS) as Record<string, unknown>) : null;
if (timeJobs || workOptions !== null) {
  type Work = (this: PgBoss, ...args: unknown[]) => Promise<string>;
  const originalWork = PgBoss.prototype.work as unknown as Work;
  (PgBoss.prototype as unknown as { work: Work }).work = function (this: PgBoss, ...args: unknown[]) {
    const last = args.length - 1;
    const handler = args[last];
    if (workOptions !== null && args.length === 3 && typeof args[1] === 'object' && args[1] !== null) {
      const merged: Record<string, unknown> = { ...args[1], ...workOptions };
      for (const [k, v] of Object.entries(workOptions)) if (v === null) delete merged[k]; // null removes an option
      args[1] = merged;
    }
    if (timeJobs && typeof handler === 'function') {
      args[last] = async (jobs: unknown) => {
        const t = performance.now();
        try {
          return await (handler as (jobs: unknown) => Promise<unknown>)(jobs);
        } finally {
          handlerMs.push(performance.now() - t);
        }
      };
    }
    return originalWork.apply(this, args);
  };
}

try {
  const config = loadConfig({}, {
    databaseUrl,
    publicUrl,
    port: 0,
    host: '127.0.0.1',
    adminToken: 'bench-admin-token-0123456789abcdef',
    sandbox: true,
    // Errors only: a sync failing unexpectedly shows up in the bench output.
    logLevel: process.env.BENCH_CHILD_LOG === '1' ? 'info' : 'error',
    databasePoolSize: Number(poolRaw),
    dataDir: '/nonexistent',
    encryptionKey: BENCH_ENCRYPTION_KEY,
    workerConcurrency: Number(concurrencyRaw),
  });
  const logger = createLogger(config.logLevel);
  const server = await createServer({ config, logger, adminToken: config.adminToken ?? '', role: mode === 'worker' ? 'worker' : 'api', jobs: true });
  // The same engine without a job queue: enqueueDue then does only its database work.
  const queueless = syncEngine({
    db: server.db, catalog: server.catalog, clock: server.clock, log: logger, queue: null,
    runClaimed: async () => {
      throw new Error('the queue-less bench engine runs no syncs');
    },
  });
  serveParent({
    stop: () => server.close(),
    async call(op, args) {
      if (op === 'memory') return memorySample();
      if (op === 'jobsReset') {
        handlerMs = [];
        return null;
      }
      if (op === 'jobs') return handlerMs;
      if (op === 'tick') {
        const { queue } = args as { queue: boolean };
        const t = performance.now();
        const queued = await (queue ? server.engine : queueless).enqueueDue();
        return { ms: performance.now() - t, queued: queued.length };
      }
      if (op === 'syncOne') {
        const { connectionId } = args as { connectionId: string };
        const t = performance.now();
        const out = await server.engine.sync({ connectionId, action: 'auto-update', attended: false }, { wait: true, enforceBudget: false });
        const ms = performance.now() - t;
        if (out.kind !== 'done') throw new Error(`sync of ${connectionId}: ${out.kind}`);
        return { ms, fetchStatus: out.sync.fetch_status, errorDetail: out.sync.error_detail };
      }
      throw new Error(`unknown operation ${op}`);
    },
  });
} catch (err) {
  reportFailure(err);
}
