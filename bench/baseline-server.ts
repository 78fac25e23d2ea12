/**
 * Child process: the baseline. A bare Fastify 5 server (no auth, no plugins, no schemas, no logger)
 * with one route running the same query as GET /users/:userId/connections (Mooring's own
 * connectionsRepository.listForClientUser) on a pg Pool of the same size.
 * argv: <databaseUrl> <port> <poolSize> <clientId> [variants]   (variants: only "prepared", for experiments)
 */
import Fastify from 'fastify';
import { connectionsRepository } from '../src/connections/repository.ts';
import { openDb } from '../src/db/db.ts';
import { LONGEST_WINDOW_MS } from '../src/syncs/cadence.ts';
import { reportFailure, serveParent } from './ipc.ts';
import { parseVariants, withVariants } from './variants.ts';

const [databaseUrl = '', portRaw = '0', poolRaw = '10', clientId = '', variantsRaw = ''] = process.argv.slice(2);

try {
  const poolSize = Number(poolRaw);
  // openDb on PostgreSQL is a thin wrapper around one pg.Pool of `poolSize` connections.
  const rawDb = await openDb({ databaseUrl, dataDir: null, poolSize });
  const variants = parseVariants(variantsRaw);
  const db = variants.size === 0 ? rawDb : withVariants(rawDb, variants, { databaseUrl, poolSize, stats: new Map() });
  const connections = connectionsRepository(db);
  const app = Fastify();
  app.get<{ Params: { userId: string } }>('/users/:userId/connections', async (req) => {
    const rows = await connections.listForClientUser(clientId, req.params.userId, new Date(Date.now() - LONGEST_WINDOW_MS));
    return { data: rows, meta: {} };
  });
  await app.listen({ port: Number(portRaw), host: '127.0.0.1' });
  serveParent({
    async stop() {
      await app.close();
      await db.close();
    },
  });
} catch (err) {
  reportFailure(err);
}
