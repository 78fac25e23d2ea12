/**
 * Section `scheduler`: the cost of one scheduler tick (engine.enqueueDue: lock the due connections,
 * queue a sync for each, move their next sync time) with 1,000 connections due among 10,000 and
 * among 1,000,000, timed in a Mooring process; the ratio of the two says whether the tick's cost
 * follows the number due (as it should) or the table size.
 */
import type pg from 'pg';
import { connectionsRepository } from '../src/connections/repository.ts';
import type { Queryable } from '../src/db/db.ts';
import { sandboxCatalog } from '../src/providers/catalog.ts';
import { SCHEDULER_BATCH } from '../src/syncs/scheduler.ts';
import { dropDatabase, environmentLine, envNum, fmtInt, fmtMs, fmtNum, freshDatabase, log, median, startChild, waitForQuiet, withClient, type Child } from './common.ts';
import type { SectionResult } from './section-sync.ts';

export const SCHED_DB = 'mooring_bench_sched';
const DUE = 1000;
const TICKS = envNum('BENCH_SCHED_TICKS', 15);
const SIZES = (process.env.BENCH_SCHED_SIZES ?? '10000,1000000').split(',').map(Number);
const CONNECTIONS_PER_USER = 10;
const OB_PROVIDER_IDS = sandboxCatalog('http://unused').filter((e) => e.adapter === 'openbanking').map((e) => e.id);

/** Adds connections (and their users) numbered from..to-1 with next sync times spread over 6 hours from 10 minutes on. */
async function addConnections(c: pg.Client, from: number, to: number): Promise<void> {
  await c.query(
    `insert into users (id, client_id, client_user_id, user_type, scopes, created_at, updated_at, last_accessed)
     select 'su-' || g, 'bench-sched', 'cu-' || g, 'test', 'user:read', now() - interval '60 days', now(), now()
     from generate_series($1::int / ${CONNECTIONS_PER_USER}, ($2::int - 1) / ${CONNECTIONS_PER_USER}) g
     on conflict do nothing`,
    [from, to],
  );
  await c.query(
    `insert into connections (id, user_id, provider_id, connected_on, last_updated, expires_at, user_consented_at, tpp_consent,
                              provider_ref, provider_grant, last_fetch_status, consecutive_failures, last_attempt_at, next_sync_at, created_at)
     select p || ':c' || g, 'su-' || (g / ${CONNECTIONS_PER_USER}), p, now() - interval '30 days', now() - interval '3 hours',
            now() + interval '60 days', now() - interval '30 days', true, 'aac-c' || g, '{"accessToken":"x"}', 'success', 0,
            now() - interval '3 hours', now() + interval '10 minutes' + (g % 21600) * interval '1 second', now() - interval '30 days'
     from generate_series($1::int, $2::int - 1) g, lateral (select ($3::text[])[1 + g % array_length($3::text[], 1)] as p) x`,
    [from, to, OB_PROVIDER_IDS],
  );
}

/** The 1,000 due connections: due a minute ago, each with two unattended syncs in the last 24 hours (budget 2 left). */
async function addDue(c: pg.Client): Promise<string[]> {
  await c.query(`insert into users (id, client_id, client_user_id, user_type, scopes, created_at, updated_at) values ('su-due', 'bench-sched', 'due', 'test', 'user:read', now(), now())`);
  const r = await c.query<{ id: string }>(
    `insert into connections (id, user_id, provider_id, connected_on, last_updated, expires_at, user_consented_at, tpp_consent,
                              provider_ref, provider_grant, last_fetch_status, consecutive_failures, last_attempt_at, next_sync_at, created_at)
     select p || ':due' || g, 'su-due', p, now() - interval '30 days', now() - interval '6 hours', now() + interval '60 days',
            now() - interval '30 days', true, 'aac-due' || g, '{"accessToken":"x"}', 'success', 0, now() - interval '6 hours',
            now() - interval '1 minute', now() - interval '30 days'
     from generate_series(1, $1::int) g, lateral (select ($2::text[])[1 + g % array_length($2::text[], 1)] as p) x
     returning id`,
    [DUE, OB_PROVIDER_IDS],
  );
  await c.query(
    `insert into syncs (id, connection_id, user_id, provider_id, action, method, state, attended, fetch_status, created_at, fetched_at, finished_at)
     select gen_random_uuid(), c.id, c.user_id, c.provider_id, 'auto-update', 'UPDATE', 'done', false, 'success', t, t, t
     from connections c cross join (values (now() - interval '12 hours'), (now() - interval '6 hours')) v(t)
     where c.user_id = 'su-due'`,
  );
  return r.rows.map((x) => x.id);
}

/** Puts the due connections back: due again, their queued syncs deleted, dead rows vacuumed. */
async function rearm(c: pg.Client, ids: string[]): Promise<void> {
  await c.query(`delete from syncs where state = 'queued'`);
  await c.query(`update connections set next_sync_at = now() - interval '1 minute' where id = any($1::text[])`, [ids]);
  await c.query('vacuum connections, syncs');
}

/** The tick queues into the syncs table, the one queue: there is nothing else to hand the syncs to. */
type Mode = 'tick';
const MODES: Mode[] = ['tick'];
const MODE_LABEL: Record<Mode, string> = {
  tick: 'Tick as the worker runs it (the syncs table is the queue)',
};

interface TickStats {
  size: number;
  mode: Mode;
  ms: number[];
  median: number;
}

async function measureTicks(c: pg.Client, engine: Child, ids: string[], size: number, mode: Mode): Promise<TickStats> {
  const ms: number[] = [];
  await waitForQuiet();
  for (let i = 0; i <= TICKS; i += 1) {
    await rearm(c, ids);
    const r = await engine.call<{ ms: number; queued: number }>('tick', {});
    if (r.queued !== DUE) throw new Error(`a tick queued ${r.queued} syncs, expected ${DUE}`);
    if (i > 0) ms.push(r.ms); // the first warms up
  }
  const out = { size, mode, ms, median: median(ms) };
  log(`  ${fmtInt(size)} connections, ${MODE_LABEL[mode]}: median ${fmtMs(out.median)} (${ms.map((x) => x.toFixed(0)).join(', ')} ms)`);
  return out;
}

/** The due query exactly as lockDue sends it, captured by a recording Queryable, then EXPLAIN ANALYZEd (rolled back). */
async function explainDue(c: pg.Client): Promise<string> {
  let captured: { text: string; params: unknown[] } | null = null;
  const recorder: Queryable = {
    async query<R>(text: string, params?: readonly unknown[]) {
      captured = { text, params: [...(params ?? [])] };
      return { rows: [] as R[], rowCount: 0 };
    },
  };
  await connectionsRepository(recorder).lockDue(new Date(), SCHEDULER_BATCH);
  const q = captured as { text: string; params: unknown[] } | null;
  if (q === null) throw new Error('lockDue ran no query');
  await c.query('begin');
  try {
    await c.query(q.text, q.params);
    const r = await c.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers, costs off) ${q.text}`, q.params);
    return r.rows.map((row) => row['QUERY PLAN']).join('\n');
  } finally {
    await c.query('rollback');
  }
}

export async function runSchedulerSection(): Promise<SectionResult> {
  log(`scheduler cost per tick: (re)creating database ${SCHED_DB}`);
  const url = await freshDatabase(SCHED_DB);
  log('starting a Mooring process to drive the engine (child process; it migrates the database)');
  const engine = await startChild('Mooring engine (scheduler)', 'worker-process.ts', ['engine', url, 'http://127.0.0.1:1', '1', '10'], 0);
  const results: TickStats[] = [];
  const plans = new Map<number, string>();
  const seedSeconds = new Map<number, number>();
  try {
    await withClient(url, async (c) => {
      const ids = await addDue(c);
      let have = 0;
      for (const size of [...SIZES].sort((a, b) => a - b)) {
        const t = performance.now();
        log(`  seeding ${fmtInt(size - DUE - have)} more connections not due (next sync within 6 hours), ${fmtInt(DUE)} due`);
        for (let from = have; from < size - DUE; from += 250_000) await addConnections(c, from, Math.min(size - DUE, from + 250_000));
        have = size - DUE;
        await c.query('vacuum analyze');
        seedSeconds.set(size, (performance.now() - t) / 1000);
        log(`  ${fmtInt(size)} connections in ${((performance.now() - t) / 1000).toFixed(1)} s`);
        await rearm(c, ids);
        plans.set(size, await explainDue(c));
        for (const mode of MODES) results.push(await measureTicks(c, engine, ids, size, mode));
      }
    });
  } finally {
    await engine.stop();
    await dropDatabase(SCHED_DB);
  }

  const sizes = [...new Set(results.map((r) => r.size))].sort((a, b) => a - b);
  const get = (size: number, mode: Mode): TickStats | undefined => results.find((r) => r.size === size && r.mode === mode);
  const small = sizes[0];
  const big = sizes[sizes.length - 1];
  const ratioOf = (mode: Mode): number | null => {
    const a = small === undefined ? undefined : get(small, mode);
    const b = big === undefined ? undefined : get(big, mode);
    return a === undefined || b === undefined || a === b ? null : b.median / a.median;
  };
  const rows = MODES.map((mode) => {
    const cells = sizes.map((s) => {
      const r = get(s, mode);
      return r === undefined ? 'n/a' : `**${fmtMs(r.median)}** (${fmtNum((1000 * r.median) / DUE, 0)} µs per sync queued)`;
    });
    const ratio = ratioOf(mode);
    return `| ${MODE_LABEL[mode]} | ${cells.join(' | ')} | ${ratio === null ? 'n/a' : `**${fmtNum(ratio, 2)}**`} |`;
  });
  const allTicks = results.map((r) => `| ${fmtInt(r.size)} | ${MODE_LABEL[r.mode]} | ${r.ms.map((x) => x.toFixed(0)).join(', ')} |`);
  const tickRatio = ratioOf('tick');
  const bigPlan = big === undefined ? '' : (plans.get(big) ?? '');
  const summary =
    `Scheduler tick (1,000 due): ${sizes.map((s) => `${fmtInt(s)}: ${fmtMs(get(s, 'tick')?.median ?? Number.NaN)}`).join('; ')}; ` +
    `ratio ${fmtInt(big ?? 0)}/${fmtInt(small ?? 0)}: ${tickRatio === null ? 'n/a' : fmtNum(tickRatio, 2)}`;

  const markdown = `## Scheduler cost per tick

_Measured ${new Date().toISOString()} on ${await environmentLine()}; re-run this section alone with \`BENCH_ONLY=scheduler\`._

One scheduler tick, \`engine.enqueueDue()\`, with **${fmtInt(DUE)} connections due** among ${sizes.map(fmtInt).join(' and among ')} connections: lock the due
rows (\`for update skip locked\`), check the providers' health, insert ${fmtInt(DUE)} queued syncs, move each connection's next sync time.
Median of ${TICKS} ticks after one warm-up tick.

| Tick | ${sizes.map((s) => `${fmtInt(s)} connections`).join(' | ')} | Ratio ${fmtInt(big ?? 0)} ÷ ${fmtInt(small ?? 0)} |
|---|${sizes.map(() => '---:|').join('')}---:|
${rows.join('\n')}

The tick's cost follows the number of connections due, not the size of the table, when the ratio is close to 1: the due query
is an index range scan on \`connections_due\` (plans below), and everything else the tick does is per due connection.

Method:
- Database \`${SCHED_DB}\` (dropped afterwards), migrated by Mooring, seeded with SQL (\`generate_series\`): connections to the
  ${OB_PROVIDER_IDS.length} sandbox Open Banking providers, ${CONNECTIONS_PER_USER} per user, with next sync times spread evenly over the next 6 hours;
  the ${fmtInt(DUE)} due connections were due a minute ago and each has 2 unattended syncs in the last 24 hours (budget left: 2), so
  the tick queues a sync for every one. ${sizes.map((s) => `${fmtInt(s)}: seeded in ${fmtNum(seedSeconds.get(s) ?? 0)} s`).join('; ')} (then \`VACUUM ANALYZE\`).
- The tick runs in a Mooring process (createServer, no worker loops; bench/worker-process.ts mode \`engine\`): createServer's
  engine, as a worker's tick runs it; the queued syncs wait in the syncs table for the workers' claims. Wall time of the
  \`enqueueDue()\` call.
- Between ticks (not timed): the queued syncs are deleted, the ${fmtInt(DUE)} connections are made due again, and
  \`VACUUM connections, syncs\` clears the dead rows, as autovacuum would.

All ticks (ms):

| Connections | Tick | Ticks (ms) |
|---:|---|---|
${allTicks.join('\n')}

EXPLAIN (ANALYZE, BUFFERS) of the due query (\`connectionsRepository.lockDue\`, as sent) with ${fmtInt(big ?? 0)} connections:

\`\`\`
${bigPlan}
\`\`\`
${
  small !== undefined && small !== big
    ? `
With ${fmtInt(small)} connections:

\`\`\`
${plans.get(small) ?? ''}
\`\`\`
`
    : ''
}`;
  return { markdown, summary };
}
