/**
 * What-if variants of the database layer, for the bench's experiments (BENCH_EXPERIMENTS=1). They
 * emulate candidate changes to src/ without touching it, by wrapping the Db that createServer gets:
 *
 *   trace        count and time every statement (diagnostics, no behaviour change)
 *   cache-token  serve repeated look-ups of the same ClientCredentials token from memory (60 s),
 *                as an in-process token cache in the bearer hook would
 *   skip-owner   answer the "user belongs to client" check without a round trip, as folding that
 *                check into the connections query would (the check itself is one index probe)
 *   prepared     send every statement as a named (prepared) statement, so PostgreSQL parses and
 *                plans it once per connection instead of on every execution
 *   cache-client serve repeated look-ups of the same OIDC client from memory (60 s), as a short
 *                client cache in front of oidc-provider's Client.find would
 *   async-token  store new ClientCredentials tokens with synchronous_commit off (no WAL flush wait
 *                on the token endpoint), e.g. `with cfg as (select set_config('synchronous_commit',
 *                'off', true)) insert ...` in the adapter's upsert
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Db, Queryable, QueryResult } from '../src/db/db.ts';
import type { QueryStat } from './ipc.ts';

export const VARIANTS = ['trace', 'cache-token', 'skip-owner', 'prepared', 'cache-client', 'async-token'] as const;
export type Variant = (typeof VARIANTS)[number];

export function parseVariants(raw: string): Set<Variant> {
  const out = new Set<Variant>();
  for (const v of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (!(VARIANTS as readonly string[]).includes(v)) throw new Error(`unknown variant "${v}"`);
    out.add(v as Variant);
  }
  return out;
}

type QueryFn = Queryable['query'];

const statementName = (text: string): string => `b_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;

/** Replaces query/transaction of a PostgreSQL Db with named-statement versions on a pool of the same size. */
function prepared(base: Db, databaseUrl: string, poolSize: number): Db {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: poolSize });
  pool.on('error', () => undefined);
  const run = async <R>(c: pg.Pool | pg.PoolClient, text: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
    const r = await c.query({ name: statementName(text), text, values: params as unknown[] | undefined });
    return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
  };
  return {
    ...base,
    query: <R>(text: string, params?: readonly unknown[]) => run<R>(pool, text, params),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const out = await fn({ query: <R>(text: string, params?: readonly unknown[]) => run<R>(client, text, params) });
        await client.query('commit');
        return out;
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    async close() {
      await pool.end();
      await base.close();
    },
  };
}

const MODEL_FIND = /^select payload, consumed_at is not null as consumed from oidc_models\s+where kind = \$1 and id = \$2/;
const OWNER_CHECK = 'select 1 from users where id = $1 and client_id = $2';
const UPSERT = /^insert into oidc_models \(kind, id, payload/;
const norm = (sql: string): string => sql.replace(/\s+/g, ' ').trim();
/** The adapter's upsert as the emulation expects it; a different text means the emulation is stale. */
const EXPECTED_UPSERT = norm(`insert into oidc_models (kind, id, payload, grant_id, uid, user_code, expires_at)
  values ($1, $2, $3, $4, $5, $6, case when $7::int is null then null else now() + make_interval(secs => $7::int) end)
  on conflict (kind, id) do update set payload = excluded.payload, grant_id = excluded.grant_id,
  uid = excluded.uid, user_code = excluded.user_code, expires_at = excluded.expires_at`);
/** The same upsert, committing without waiting for the WAL flush (one statement, one round trip). */
const ASYNC_UPSERT = `with cfg as (select set_config('synchronous_commit', 'off', true))
  insert into oidc_models (kind, id, payload, grant_id, uid, user_code, expires_at)
  select $1::text, $2::text, $3::jsonb, $4::text, $5::text, $6::text,
         case when $7::int is null then null else now() + make_interval(secs => $7::int) end
  from cfg
  on conflict (kind, id) do update set payload = excluded.payload, grant_id = excluded.grant_id,
    uid = excluded.uid, user_code = excluded.user_code, expires_at = excluded.expires_at`;

export function withVariants(base: Db, variants: Set<Variant>, opts: { databaseUrl: string; poolSize: number; stats: Map<string, QueryStat> }): Db {
  let db = variants.has('prepared') ? prepared(base, opts.databaseUrl, opts.poolSize) : base;

  if (variants.has('cache-token') || variants.has('skip-owner') || variants.has('cache-client') || variants.has('async-token')) {
    const inner = db.query.bind(db) as QueryFn;
    const cache = new Map<string, { at: number; result: QueryResult<unknown> }>();
    const cachedKind = (kind: unknown): boolean =>
      (kind === 'ClientCredentials' && variants.has('cache-token')) || (kind === 'Client' && variants.has('cache-client'));
    const query = async function query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      if (variants.has('skip-owner') && text === OWNER_CHECK) return { rows: [{ '?column?': 1 }] as R[], rowCount: 1 };
      if (variants.has('async-token') && params?.[0] === 'ClientCredentials' && UPSERT.test(text.trim())) {
        if (norm(text) !== EXPECTED_UPSERT) throw new Error(`async-token: the adapter's upsert changed; update bench/variants.ts:\n${norm(text)}`);
        return inner<R>(ASYNC_UPSERT, params);
      }
      if (cachedKind(params?.[0]) && MODEL_FIND.test(text.trim())) {
        const key = `${String(params?.[0])}:${String(params?.[1])}`;
        const hit = cache.get(key);
        if (hit !== undefined && Date.now() - hit.at < 60_000 && hit.result.rowCount > 0) return hit.result as QueryResult<R>;
        const result = await inner<R>(text, params);
        cache.set(key, { at: Date.now(), result });
        return result;
      }
      return inner<R>(text, params);
    };
    db = { ...db, query };
  }

  if (variants.has('trace')) {
    const timed = (q: QueryFn): QueryFn =>
      async function query<R>(text: string, params?: readonly unknown[]) {
        const t = performance.now();
        try {
          return await q<R>(text, params);
        } finally {
          const sql = text.replace(/\s+/g, ' ').trim();
          const s = opts.stats.get(sql) ?? { sql, count: 0, totalMs: 0 };
          s.count += 1;
          s.totalMs += performance.now() - t;
          s.params = params === undefined ? [] : [...params];
          opts.stats.set(sql, s);
        }
      };
    const inner = db;
    db = {
      ...inner,
      query: timed(inner.query.bind(inner) as QueryFn),
      transaction: (fn) => inner.transaction((tx) => fn({ query: timed(tx.query.bind(tx) as QueryFn) })),
    };
  }
  return db;
}
