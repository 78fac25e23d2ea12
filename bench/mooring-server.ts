/**
 * Child process: a Mooring API process exactly as createServer builds it (role 'api'), on PostgreSQL,
 * with logging off.
 * argv: <databaseUrl> <port> <adminToken> <poolSize> [variants]
 * `variants` (comma-separated, see variants.ts) wraps the database layer for diagnostics and what-if
 * experiments; empty for the real measurements.
 */
import { loadConfig } from '../src/config.ts';
import { openDb } from '../src/db/db.ts';
import { createLogger } from '../src/logger.ts';
import { createServer } from '../src/server.ts';
import { reportFailure, serveParent, type QueryStat } from './ipc.ts';
import { parseVariants, withVariants } from './variants.ts';

const [databaseUrl = '', portRaw = '0', adminToken = '', poolRaw = '10', variantsRaw = ''] = process.argv.slice(2);
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
    dataDir: '/nonexistent',
  });
  const stats = new Map<string, QueryStat>();
  const variants = parseVariants(variantsRaw);
  const rawDb = await openDb({ databaseUrl, dataDir: null, poolSize: config.databasePoolSize });
  const db = variants.size === 0 ? rawDb : withVariants(rawDb, variants, { databaseUrl, poolSize: config.databasePoolSize, stats });
  // An API process as deployed (role 'api': HTTP app and job queue, no sync worker in this process).
  const server = await createServer({ config, logger: createLogger(config.logLevel), adminToken, role: 'api', db });
  if (server.app === null) throw new Error('createServer built no HTTP app');
  await server.app.listen({ port, host: config.host });
  serveParent({
    async stop() {
      await server.close();
      await db.close();
    },
    queries: () => [...stats.values()],
  });
} catch (err) {
  reportFailure(err);
}
