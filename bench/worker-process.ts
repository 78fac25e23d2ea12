/**
 * Child process: Mooring without an HTTP listener, as createServer builds it, on PostgreSQL.
 *
 *   mode `worker`  a sync worker process exactly as deployed (role 'worker'): syncs claimed from the
 *                  syncs table at MOORING_WORKER_CONCURRENCY = <concurrency>, the scheduler tick, the
 *                  reaper, webhook deliveries and the other periodic loops of src/server.ts.
 *   mode `engine`  no worker loops (role 'api', app built but not listening): the bench drives the
 *                  sync engine itself — `tick` times one engine.enqueueDue() (as the worker's tick
 *                  runs it), `syncOne` times one complete sync of a connection in this process.
 *
 * Banks are reached at <publicUrl> (the API child serving the sandbox banks).
 * argv: <mode> <databaseUrl> <publicUrl> <concurrency> <poolSize> [<the banks' mutual-TLS port>]
 * Operations (ipc.ts `call`): memory, tick, syncOne; jobsReset and jobs (see below).
 *
 * Instrumentation, by environment:
 *   BENCH_TIME_JOBS=1          time every sync run a worker claims (`jobs` answers the durations in ms)
 *   MOORING_PROVIDER_CALL_LOG=off  no provider call log (the baseline of the call log's overhead; on by default)
 */
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { createServer } from '../src/server.ts';
import { memorySample, reportFailure, serveParent } from './ipc.ts';
import { BENCH_DATA_DIR, BENCH_ENCRYPTION_KEY } from './common.ts';

const [mode = 'worker', databaseUrl = '', publicUrl = '', concurrencyRaw = '20', poolRaw = '10', mtlsPortRaw = ''] = process.argv.slice(2);

let handlerMs: number[] = [];
const timeJobs = process.env.BENCH_TIME_JOBS === '1';

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
    dataDir: BENCH_DATA_DIR,
    encryptionKey: BENCH_ENCRYPTION_KEY,
    workerConcurrency: Number(concurrencyRaw),
    providerCallLog: !['off', 'false', '0', 'no'].includes((process.env.MOORING_PROVIDER_CALL_LOG ?? 'on').toLowerCase()),
    // The banks' mutual-TLS listener of the API process this worker calls (each API process has its own port).
    ...(mtlsPortRaw === '' ? {} : { sandboxMtlsPort: Number(mtlsPortRaw) }),
  });
  const logger = createLogger(config.logLevel);
  // The engine mode drives syncs itself: a process without HTTP, banks or worker loops.
  const server = await createServer({ config, logger, adminToken: config.adminToken ?? '', role: 'worker', jobs: mode === 'worker' });
  if (timeJobs) {
    // Wraps the worker's run of each claimed sync (the engine object is what the worker calls).
    const runLeased = server.engine.runLeased;
    server.engine.runLeased = async (sync) => {
      const t = performance.now();
      try {
        return await runLeased(sync);
      } finally {
        handlerMs.push(performance.now() - t);
      }
    };
  }
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
        const t = performance.now();
        const queued = await server.engine.enqueueDue();
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
