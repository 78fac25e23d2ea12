/**
 * Child process: a Mooring server exactly as createServer builds it, on PostgreSQL, with logging off.
 * argv: <databaseUrl> <port> <adminToken> <poolSize>
 */
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { createServer } from '../src/server.ts';
import { reportFailure, serveParent } from './ipc.ts';

const [databaseUrl = '', portRaw = '0', adminToken = '', poolRaw = '10'] = process.argv.slice(2);
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
  const server = await createServer({ config, logger: createLogger(config.logLevel), adminToken });
  await server.app.listen({ port, host: config.host });
  serveParent(() => server.close());
} catch (err) {
  reportFailure(err);
}
