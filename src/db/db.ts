/**
 * The database: PostgreSQL through `pg` when DATABASE_URL is set, otherwise embedded PGlite in the
 * data directory. Both are reached through the same small interface and run the same SQL.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs fn in one transaction; rolls back if it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs SQL text that may hold several statements (simple query protocol); answers one result per
   * statement when there are several, as `pg` does.
   */
  executeSql(text: string, values?: readonly unknown[]): Promise<QueryResult<Record<string, unknown>> | QueryResult<Record<string, unknown>>[]>;
  close(): Promise<void>;
}

/** Answers once the database answers a trivial query (the health check). */
export async function ping(db: Queryable): Promise<void> {
  await db.query('select 1');
}

// Keep int8 and numeric as strings in pg; callers convert where they need numbers (as PGlite does for numeric).
pg.types.setTypeParser(20, (v: string) => v);

function postgresDb(url: string, poolSize: number): Db {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it on next use.
  });
  const query = async <R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
    const r = await pool.query(text, params as unknown[] | undefined);
    return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
  };
  return {
    kind: 'postgres',
    query,
    async transaction(fn) {
      const client = await pool.connect();
      let broken: Error | undefined;
      // A checked-out client has no error listener of the pool's: without this one, a connection
      // lost mid-transaction (a terminated backend, a failover) would be an uncaught 'error' event.
      const onError = (err: Error): void => {
        broken = err;
      };
      client.on('error', onError);
      try {
        await client.query('begin');
        const tx: Queryable = {
          async query<R>(text: string, params?: readonly unknown[]) {
            const r = await client.query(text, params as unknown[] | undefined);
            return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
          },
        };
        const out = await fn(tx);
        await client.query('commit');
        return out;
      } catch (err) {
        // A client whose rollback fails (its connection was lost) must not go back to the pool.
        await client.query('rollback').catch((e: unknown) => {
          broken = e instanceof Error ? e : new Error(String(e));
        });
        throw err;
      } finally {
        client.removeListener('error', onError);
        client.release(broken);
      }
    },
    async executeSql(text, values) {
      const r = (await pool.query(text, values as unknown[] | undefined)) as pg.QueryResult | pg.QueryResult[];
      if (Array.isArray(r)) return r.map((x) => ({ rows: x.rows, rowCount: x.rowCount ?? 0 }));
      return { rows: r.rows, rowCount: r.rowCount ?? 0 };
    },
    close: () => pool.end(),
  };
}

async function pgliteDb(dataDir: string | null): Promise<Db> {
  if (dataDir !== null) fs.mkdirSync(dataDir, { recursive: true });
  const lite = dataDir === null ? new PGlite() : new PGlite(path.join(dataDir, 'pgdata'));
  await lite.waitReady;
  const wrap = <R>(r: { rows: unknown[]; affectedRows?: number }): QueryResult<R> => ({
    rows: r.rows as R[],
    // PGlite reports affectedRows 0 for selects; pg's rowCount counts returned rows there.
    rowCount: r.rows.length > 0 ? r.rows.length : (r.affectedRows ?? 0),
  });
  return {
    kind: 'pglite',
    async query<R>(text: string, params?: readonly unknown[]) {
      return wrap<R>(await lite.query(text, params as unknown[] | undefined));
    },
    async transaction(fn) {
      return lite.transaction(async (t) =>
        fn({
          async query<R>(text: string, params?: readonly unknown[]) {
            return wrap<R>(await t.query(text, params as unknown[] | undefined));
          },
        }),
      );
    },
    async executeSql(text, values) {
      if (values !== undefined && values.length > 0) return wrap(await lite.query(text, values as unknown[]));
      const results = await lite.exec(text);
      const mapped = results.map((r) => wrap<Record<string, unknown>>(r));
      return mapped.length === 1 ? (mapped[0] as QueryResult<Record<string, unknown>>) : mapped;
    },
    close: () => lite.close(),
  };
}

export interface DbOptions {
  databaseUrl: string | null;
  /** Directory for the embedded database; null keeps it in memory (tests). */
  dataDir: string | null;
  poolSize?: number;
}

export async function openDb(opts: DbOptions): Promise<Db> {
  if (opts.databaseUrl !== null) return postgresDb(opts.databaseUrl, opts.poolSize ?? 10);
  return pgliteDb(opts.dataDir);
}
