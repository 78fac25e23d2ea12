/**
 * Child process: a Mooring API process exactly as createServer builds it (role 'api'), on PostgreSQL,
 * with logging off. It also serves the sandbox banks, so sync workers (bench/worker-process.ts) call
 * their banks here.
 * argv: <databaseUrl> <port> <adminToken> <poolSize> [variants] [sandboxLatencyMs]
 * `variants` (comma-separated, see variants.ts) wraps the database layer for diagnostics and what-if
 * experiments; empty for the real measurements. `sandboxLatencyMs` is MOORING_SANDBOX_LATENCY_MS.
 * Operations (ipc.ts `call`): `bankCalls` answers how many /sandbox/ requests it has served and
 * `bankTimes` how long each took to answer since `bankTimesReset` (Fastify's reply.elapsedTime, latency
 * included) — both only when sandboxLatencyMs is given; `memory` its memory.
 */
import { loadConfig } from '../src/config.ts';
import { openDb } from '../src/db/db.ts';
import { createLogger } from '../src/logger.ts';
import { createServer } from '../src/server.ts';
import { memorySample, reportFailure, serveParent, type QueryStat } from './ipc.ts';
import { parseVariants, withVariants } from './variants.ts';
import { BENCH_DATA_DIR, BENCH_ENCRYPTION_KEY } from './common.ts';

const [databaseUrl = '', portRaw = '0', adminToken = '', poolRaw = '10', variantsRaw = '', latencyRaw = '', mtlsPortRaw = ''] = process.argv.slice(2);
const port = Number(portRaw);
const publicUrl = `http://127.0.0.1:${port}`;

try {
  const config = loadConfig({}, {
    databaseUrl,
    publicUrl,
    port,
    host: '127.0.0.1',
    adminToken,
    sandbox: true,
    logLevel: 'silent',
    databasePoolSize: Number(poolRaw),
    dataDir: BENCH_DATA_DIR,
    encryptionKey: BENCH_ENCRYPTION_KEY,
    sandboxLatencyMs: latencyRaw === '' ? 0 : Number(latencyRaw),
    // Each API process its own mutual-TLS port: processes sharing one (SO_REUSEPORT) would share their connections.
    ...(mtlsPortRaw === '' ? {} : { sandboxMtlsPort: Number(mtlsPortRaw) }),
  });
  const stats = new Map<string, QueryStat>();
  const variants = parseVariants(variantsRaw);
  const rawDb = await openDb({ databaseUrl, dataDir: null, poolSize: config.databasePoolSize });
  const db = variants.size === 0 ? rawDb : withVariants(rawDb, variants, { databaseUrl, poolSize: config.databasePoolSize, stats });
  // An API process as deployed (role 'api': HTTP app and job queue, no sync worker in this process).
  let bankCalls = 0;
  let bankMs: number[] = [];
  // The Open Banking banks' token, consent and resource calls arrive on their mutual-TLS listener.
  const onSandboxBankCall = (elapsedMs: number): void => {
    bankCalls += 1;
    bankMs.push(elapsedMs);
  };
  const server = await createServer({ config, logger: createLogger(config.logLevel), adminToken, role: 'api', db, ...(latencyRaw !== '' ? { onSandboxBankCall } : {}) });
  if (server.app === null) throw new Error('createServer built no HTTP app');
  // Only for the sync benchmarks (latency given): the API benchmarks measure the server untouched.
  if (latencyRaw !== '') {
    server.app.addHook('onRequest', async (req) => {
      if (req.url.startsWith('/sandbox/')) bankCalls += 1;
    });
    server.app.addHook('onResponse', async (req, reply) => {
      if (req.url.startsWith('/sandbox/')) bankMs.push(reply.elapsedTime);
    });
  }
  await server.app.listen({ port, host: config.host });
  serveParent({
    async stop() {
      await server.close();
      await db.close();
    },
    queries: () => [...stats.values()],
    async call(op) {
      if (op === 'bankCalls') return bankCalls;
      if (op === 'bankTimesReset') {
        bankMs = [];
        return null;
      }
      if (op === 'bankTimes') return bankMs;
      if (op === 'memory') return memorySample();
      throw new Error(`unknown operation ${op}`);
    },
  });
} catch (err) {
  reportFailure(err);
}
