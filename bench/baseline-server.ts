/**
 * Child process: the baseline. A bare Fastify 5 server (no auth, no plugins, no schemas, no logger)
 * with one route running the same query as GET /users/:userId/connections (Mooring's own
 * connectionsRepository.listForUser) on a pg Pool of the same size.
 * argv: <databaseUrl> <port> <poolSize>
 */
import Fastify from 'fastify';
import pg from 'pg';
import { connectionsRepository } from '../src/connections/repository.ts';
import type { Queryable, QueryResult } from '../src/db/db.ts';
import { LONGEST_WINDOW_MS } from '../src/syncs/cadence.ts';
import { reportFailure, serveParent } from './ipc.ts';

const [databaseUrl = '', portRaw = '0', poolRaw = '10'] = process.argv.slice(2);

try {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: Number(poolRaw) });
  const db: Queryable = {
    async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const r = await pool.query(text, params as unknown[] | undefined);
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    },
  };
  const connections = connectionsRepository(db);
  const app = Fastify();
  app.get<{ Params: { userId: string } }>('/users/:userId/connections', async (req) => {
    const rows = await connections.listForUser(req.params.userId, new Date(Date.now() - LONGEST_WINDOW_MS));
    return { data: rows, meta: {} };
  });
  await app.listen({ port: Number(portRaw), host: '127.0.0.1' });
  serveParent(async () => {
    await app.close();
    await pool.end();
  });
} catch (err) {
  reportFailure(err);
}
