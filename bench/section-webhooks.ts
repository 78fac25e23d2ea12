/**
 * Section `webhooks`: delivery throughput and event-to-delivery latency of Mooring's webhook
 * dispatcher, running in a worker process, to a local receiver (node:http on 127.0.0.1), against a
 * bare loop POSTing the same signed bodies to the same receiver with the same concurrency.
 */
import type pg from 'pg';
import type { Queryable } from '../src/db/db.ts';
import { webhooksRepository } from '../src/webhooks/repository.ts';
import {
  constantInSource, sourceContains, cpuMeter, dropDatabase, environmentLine, envNum, repeatIfDisturbed, fmtInt, fmtMs, fmtNum, freePort, freshDatabase, log, percentile, sleep, startChild, waitForQuiet, withClient,
  type Child, type CpuReading,
} from './common.ts';
import type { SectionResult } from './section-sync.ts';
import { DEFAULT_TIMERS } from '../src/timers.ts';

export const WEBHOOK_DB = 'mooring_bench_webhooks';
const EVENTS = envNum('BENCH_WEBHOOK_EVENTS', 10_000);
const MULTI_CLIENTS = envNum('BENCH_WEBHOOK_CLIENTS', 50);
const REPEATS = envNum('BENCH_WEBHOOK_REPEATS', envNum('BENCH_REPEATS', 3));
const RATE = envNum('BENCH_WEBHOOK_RATE', 50);
const TRICKLE_S = envNum('BENCH_WEBHOOK_TRICKLE_S', 15);
/** Due events of the client whose receiver hangs, during the latency run with a hanging receiver. */
const HANG_BACKLOG = envNum('BENCH_WEBHOOK_HANG_BACKLOG', 100);
/**
 * The dispatcher's settings as the measured code has them, read from src/ when the section starts
 * (values of this writing as fallback), so the notes describe the code that ran.
 */
let DISPATCHER_CONCURRENCY = 20;
let POLL_MS = 250;
let LEASE_BATCH = 200;
/** Leased events of one client held at once (in flight or queued). */
let PER_CLIENT_HELD = 20;
/** Deliveries to one client at once (null when the dispatcher has no such limit). */
let PER_CLIENT_IN_FLIGHT: number | null = 5;
/** The concurrency one client's backlog actually gets. */
let ONE_CLIENT_CONCURRENCY = 5;
/** Whether each POST opens a new connection (node:http with agent: false). */
let FRESH_CONNECTIONS = true;

function readSettings(): void {
  DISPATCHER_CONCURRENCY = constantInSource('src/server.ts', 'WEBHOOK_CONCURRENCY') ?? DISPATCHER_CONCURRENCY;
  POLL_MS = DEFAULT_TIMERS.webhookPollMs;
  LEASE_BATCH = constantInSource('src/webhooks/dispatcher.ts', 'BATCH') ?? LEASE_BATCH;
  PER_CLIENT_HELD = constantInSource('src/webhooks/dispatcher.ts', 'PER_CLIENT_HELD') ?? PER_CLIENT_HELD;
  PER_CLIENT_IN_FLIGHT = constantInSource('src/webhooks/dispatcher.ts', 'PER_CLIENT_IN_FLIGHT');
  ONE_CLIENT_CONCURRENCY = Math.min(DISPATCHER_CONCURRENCY, PER_CLIENT_IN_FLIGHT ?? PER_CLIENT_HELD);
  FRESH_CONNECTIONS = sourceContains('src/webhooks/dispatcher.ts', 'agent: false');
}
const SECRET = 'whsec_bench_0123456789abcdef';
/** Baseline variants: requests in flight, and whether each POST opens a new connection (as the dispatcher's node:http with agent: false). */
const baselines = (): [number, boolean][] => [
  [DISPATCHER_CONCURRENCY, false],
  [ONE_CLIENT_CONCURRENCY, false],
  [ONE_CLIENT_CONCURRENCY, true],
];

/** Registers one endpoint per client (all at the receiver). */
async function endpoints(c: pg.Client, clients: number, url: string): Promise<void> {
  await c.query('truncate webhook_endpoints');
  await c.query(
    `insert into webhook_endpoints (client_id, url, secret, created_at, updated_at)
     select 'bench-wh-' || g, $1, $2, now(), now() from generate_series(0, $3::int - 1) g`,
    [url, SECRET, clients],
  );
}

/** Logs `n` syncCompleted events spread over `clients` clients; due now (deliverable) or not queued (for the baseline). */
async function insertEvents(c: pg.Client, n: number, clients: number, due: boolean): Promise<void> {
  await c.query(
    `insert into webhook_events (id, client_id, user_id, event_type, payload, dedupe_key, created_at, next_attempt_at)
     select gen_random_uuid(), 'bench-wh-' || (g % $2), 'u-' || g, 'syncCompleted',
            jsonb_build_object('connectionId', '1ffe704d39629a929c8e293880fb449a:' || gen_random_uuid(), 'syncId', gen_random_uuid(),
              'action', 'auto-update', 'fetchStatus', 'success',
              'counts', jsonb_build_object('accounts', 2, 'transactionsAdded', 3, 'transactionsUpdated', 0), 'errorDetail', null),
            'bench:' || gen_random_uuid(), now(), case when $3 then now() end
     from generate_series(1, $1::int) g`,
    [n, clients, due],
  );
}

async function clear(c: pg.Client, receiver: Child): Promise<void> {
  await c.query('truncate webhook_events cascade');
  await receiver.call('reset');
}

interface Stats {
  received: number;
  duplicates: number;
  badSignatures: number;
  firstAt: number | null;
  lastAt: number | null;
}

interface MooringBulk {
  name: string;
  clients: number;
  run: number;
  rate: number;
  /** From the insert's commit to the last delivery. */
  totalS: number;
  delivered: number;
  failedAttempts: number;
  duplicates: number;
  cpu: CpuReading;
}

async function mooringBulk(c: pg.Client, receiver: Child, worker: Child, clients: number, run: number, url: string): Promise<MooringBulk> {
  await clear(c, receiver);
  await endpoints(c, clients, url);
  await waitForQuiet();
  const meter = cpuMeter(WEBHOOK_DB, () => [worker.proc.pid, receiver.proc.pid]);
  await insertEvents(c, EVENTS, clients, true);
  const inserted = Date.now();
  let s: Stats;
  for (let i = 0; ; i += 1) {
    await sleep(500);
    s = await receiver.call<Stats>('stats');
    if (s.received >= EVENTS) break;
    if (i % 10 === 9) log(`    ${fmtInt(s.received)} of ${fmtInt(EVENTS)} delivered`);
    if (Date.now() - inserted > 300_000) throw new Error(`only ${s.received} of ${EVENTS} events delivered in 5 minutes`);
  }
  const cpu = meter();
  await sleep(300); // the dispatcher records the last attempts
  const db = await c.query<{ delivered: string; failed: string }>(
    `select (select count(*) from webhook_events where delivered_at is not null) as delivered,
            (select count(*) from webhook_deliveries where status <> 'delivered') as failed`,
  );
  const first = s.firstAt ?? inserted;
  const last = s.lastAt ?? inserted;
  const out: MooringBulk = {
    name: clients === 1 ? 'one client' : `${clients} clients`, clients, run,
    rate: (EVENTS - 1) / ((last - first) / 1000), totalS: (last - inserted) / 1000,
    delivered: Number(db.rows[0]?.delivered ?? 0), failedAttempts: Number(db.rows[0]?.failed ?? 0), duplicates: s.duplicates, cpu,
  };
  log(
    `  Mooring, ${fmtInt(EVENTS)} events of ${out.name}, run ${run}: ${fmtInt(out.rate)} deliveries/s (${fmtNum(out.totalS)} s from insert to last delivery;` +
      ` ${out.failedAttempts} failed attempts, ${out.duplicates} duplicates; CPU cores: worker ${(cpu.perChild[0] ?? 0).toFixed(2)}, PostgreSQL ${cpu.postgres?.toFixed(2) ?? 'n/a'}, receiver ${(cpu.perChild[1] ?? 0).toFixed(2)}, other ${cpu.other?.toFixed(2) ?? 'n/a'})`,
  );
  return out;
}

interface BaselineBulk {
  concurrency: number;
  fresh: boolean;
  run: number;
  rate: number;
  failed: number;
  cpu: CpuReading;
}

async function baselineBulk(c: pg.Client, receiver: Child, baseline: Child, concurrency: number, fresh: boolean, run: number): Promise<BaselineBulk> {
  await clear(c, receiver);
  await insertEvents(c, EVENTS, 1, false);
  await waitForQuiet();
  const meter = cpuMeter(WEBHOOK_DB, () => [baseline.proc.pid, receiver.proc.pid]);
  const r = await baseline.call<{ ms: number; sent: number; failed: number }>('blast', { concurrency, fresh });
  const cpu = meter();
  const s = await receiver.call<Stats>('stats');
  if (s.received !== EVENTS) throw new Error(`the baseline delivered ${s.received} of ${EVENTS}`);
  const out = { concurrency, fresh, run, rate: r.sent / (r.ms / 1000), failed: r.failed, cpu };
  log(`  baseline, concurrency ${concurrency}${fresh ? ', new connection per POST' : ''}, run ${run}: ${fmtInt(out.rate)} deliveries/s`);
  return out;
}

interface Latency {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

const latencyOf = (xs: number[]): Latency => {
  const s = Float64Array.from(xs).sort();
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1] ?? Number.NaN };
};

/**
 * Events logged one at a time at RATE per second (as syncs finishing would), delivered by the running
 * worker; with `hangUrl`, while another client's receiver (at that URL) never answers and that
 * client has HANG_BACKLOG due events.
 */
async function mooringTrickle(c: pg.Client, receiver: Child, url: string, hangUrl: string | null = null): Promise<Latency & { hung: number }> {
  await clear(c, receiver);
  await endpoints(c, 1, url);
  if (hangUrl !== null) {
    await c.query(`insert into webhook_endpoints (client_id, url, secret, created_at, updated_at) values ('bench-wh-hang', $1, $2, now(), now())`, [hangUrl, SECRET]);
    await c.query(
      `insert into webhook_events (id, client_id, user_id, event_type, payload, dedupe_key, created_at, next_attempt_at)
       select gen_random_uuid(), 'bench-wh-hang', 'u-hang-' || g, 'syncCompleted', '{}'::jsonb, 'bench:' || gen_random_uuid(), now(), now()
       from generate_series(1, $1::int) g`,
      [HANG_BACKLOG],
    );
    // The hanging client's deliveries are in flight before the measured events start.
    for (let i = 0; i < 40 && (await receiver.call<number>('hung')) === 0; i += 1) await sleep(100);
  } else {
    await waitForQuiet();
  }
  const n = Math.round(RATE * TRICKLE_S);
  const created = new Map<string, number>();
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1) {
    const wait = t0 + (i * 1000) / RATE - performance.now();
    if (wait > 0) await sleep(wait);
    const now = new Date();
    // What webhooksRepository.insertEvent does (created_at = next_attempt_at = now when the client has an endpoint).
    const r = await c.query<{ id: string }>(
      `insert into webhook_events (id, client_id, user_id, event_type, payload, dedupe_key, created_at, next_attempt_at)
       values (gen_random_uuid(), 'bench-wh-0', 'u-' || $2::int, 'syncCompleted', $3, 'bench:' || gen_random_uuid(), $1, $1) returning id::text as id`,
      [now, i, JSON.stringify({ connectionId: `conn-${i}`, syncId: `sync-${i}`, action: 'auto-update', fetchStatus: 'success', counts: { accounts: 2, transactionsAdded: 3, transactionsUpdated: 0 }, errorDetail: null })],
    );
    const id = r.rows[0]?.id;
    if (id !== undefined) created.set(id, now.getTime());
  }
  for (let i = 0; i < 40; i += 1) {
    const s = await receiver.call<Stats>('stats');
    if (s.received >= n) break;
    await sleep(250);
  }
  const arrivals = await receiver.call<[string, number][]>('arrivals');
  const lat = arrivals.map(([id, at]) => at - (created.get(id) ?? at));
  if (lat.length < n) log(`    (only ${lat.length} of ${n} trickled events arrived)`);
  const out = { ...latencyOf(lat), hung: await receiver.call<number>('hung') };
  log(
    `  Mooring, ${n} events at ${RATE}/s${hangUrl === null ? '' : `, another client's receiver hanging (${out.hung} requests unanswered)`}:` +
      ` event-to-delivery p50 ${fmtMs(out.p50)}, p99 ${fmtMs(out.p99)}, max ${fmtMs(out.max)}`,
  );
  await c.query("delete from webhook_endpoints where client_id = 'bench-wh-hang'");
  return out;
}

async function baselineTrickle(c: pg.Client, receiver: Child, baseline: Child): Promise<Latency> {
  await clear(c, receiver);
  await insertEvents(c, Math.round(RATE * TRICKLE_S), 1, false);
  await waitForQuiet();
  const rtts = await baseline.call<number[]>('trickle', { ratePerS: RATE, seconds: TRICKLE_S });
  const out = latencyOf(rtts);
  log(`  baseline, ${rtts.length} POSTs at ${RATE}/s: p50 ${fmtMs(out.p50)}, p99 ${fmtMs(out.p99)}`);
  return out;
}

/** The dispatcher's lease query as sent, EXPLAIN ANALYZEd (rolled back) with a backlog of EVENTS due events of one client. */
async function explainLease(c: pg.Client): Promise<string> {
  await c.query('truncate webhook_events cascade');
  await insertEvents(c, EVENTS, 1, true);
  await c.query('analyze webhook_events');
  let captured: { text: string; params: unknown[] } | null = null;
  const recorder: Queryable = {
    async query<R>(text: string, params?: readonly unknown[]) {
      captured = { text, params: [...(params ?? [])] };
      return { rows: [] as R[], rowCount: 0 };
    },
  };
  const now = new Date();
  await webhooksRepository(recorder).leaseDue(now, new Date(now.getTime() + 120_000), LEASE_BATCH, PER_CLIENT_HELD);
  const q = captured as { text: string; params: unknown[] } | null;
  if (q === null) throw new Error('leaseDue ran no query');
  await c.query('begin');
  try {
    const r = await c.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers, costs off) ${q.text}`, q.params);
    return r.rows.map((row) => row['QUERY PLAN']).join('\n');
  } finally {
    await c.query('rollback');
  }
}

export async function runWebhooksSection(): Promise<SectionResult> {
  readSettings();
  log(`webhook delivery: (re)creating database ${WEBHOOK_DB}`);
  const url = await freshDatabase(WEBHOOK_DB);
  const port = await freePort();
  const hookUrl = `http://127.0.0.1:${port}/hooks/mooring`;
  const hangUrl = `http://127.0.0.1:${port}/hooks/hang`;
  const receiver = await startChild('webhook receiver', 'webhook-receiver.ts', [String(port), SECRET], port);
  log('starting a Mooring worker process (createServer role worker: webhook deliveries every 1 s) and the baseline (child processes)');
  const worker = await startChild('Mooring worker (webhooks)', 'worker-process.ts', ['worker', url, 'http://127.0.0.1:1', '20', '10'], 0);
  const baseline = await startChild('webhook baseline', 'webhook-baseline.ts', [url, hookUrl, SECRET], 0);
  const mooringRuns: MooringBulk[] = [];
  const baselineRuns: BaselineBulk[] = [];
  let trickle: Latency | null = null;
  let trickleHang: (Latency & { hung: number }) | null = null;
  let trickleBase: Latency | null = null;
  let plan = '';
  try {
    await withClient(url, async (c) => {
      for (let run = 1; run <= REPEATS; run += 1) {
        for (const clients of [1, MULTI_CLIENTS]) {
          mooringRuns.push(await repeatIfDisturbed(`Mooring run ${run}`, 30_000, () => mooringBulk(c, receiver, worker, clients, run, hookUrl), (r) => r.cpu.other));
        }
        for (const [conc, fresh] of baselines()) {
          baselineRuns.push(await repeatIfDisturbed(`baseline run ${run}`, 10_000, () => baselineBulk(c, receiver, baseline, conc, fresh, run), (r) => r.cpu.other));
        }
      }
      trickle = await mooringTrickle(c, receiver, hookUrl);
      trickleHang = await mooringTrickle(c, receiver, hookUrl, hangUrl);
      trickleBase = await baselineTrickle(c, receiver, baseline);
      await worker.stop();
      plan = await explainLease(c);
    });
  } finally {
    await worker.stop();
    await baseline.stop();
    await receiver.stop();
    await dropDatabase(WEBHOOK_DB);
  }

  const med = <T>(rs: T[], rate: (r: T) => number): T => {
    const s = [...rs].sort((a, b) => rate(a) - rate(b));
    const m = s[Math.floor((s.length - 1) / 2)];
    if (m === undefined) throw new Error('no runs');
    return m;
  };
  const mOne = med(mooringRuns.filter((r) => r.clients === 1), (r) => r.rate);
  const mMulti = med(mooringRuns.filter((r) => r.clients !== 1), (r) => r.rate);
  const baseOf = (conc: number, fresh: boolean): BaselineBulk[] => baselineRuns.filter((r) => r.concurrency === conc && r.fresh === fresh);
  const b20 = med(baseOf(DISPATCHER_CONCURRENCY, false), (r) => r.rate);
  const bOne = med(baseOf(ONE_CLIENT_CONCURRENCY, false), (r) => r.rate);
  const each = <T>(rs: T[], rate: (r: T) => number): string => rs.map((r) => fmtInt(rate(r))).join(' / ');
  const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(0)} %`;
  const mRow = (m: MooringBulk): string =>
    `| Mooring dispatcher (worker process), ${fmtInt(EVENTS)} events of ${m.name} | **${fmtInt(m.rate)}** | ${each(mooringRuns.filter((r) => r.clients === m.clients), (r) => r.rate)} | ${fmtNum(m.totalS)} s |` +
    ` **${pct(m.rate, b20.rate)}** | ${m.clients === 1 ? `**${pct(m.rate, bOne.rate)}**` : ''} | ${m.failedAttempts} / ${m.duplicates} | ${(m.cpu.perChild[0] ?? 0).toFixed(2)} / ${m.cpu.postgres?.toFixed(2) ?? 'n/a'} / ${m.cpu.other?.toFixed(2) ?? 'n/a'} |`;
  const bRow = ([conc, fresh]: [number, boolean]): string => {
    const b = med(baseOf(conc, fresh), (r) => r.rate);
    return (
      `| Baseline: bare loop, same bodies and receiver, ${conc} in flight${fresh ? ', a new connection per POST (node:http, agent: false)' : ' (fetch, keep-alive)'} | **${fmtInt(b.rate)}** |` +
      ` ${each(baseOf(conc, fresh), (r) => r.rate)} | ${fmtNum(EVENTS / b.rate)} s | ${pct(b.rate, b20.rate)} | ${pct(b.rate, bOne.rate)} | ${baseOf(conc, fresh).reduce((a, r) => a + r.failed, 0)} / 0 | ${(b.cpu.perChild[0] ?? 0).toFixed(2)} (baseline process) / – / ${b.cpu.other?.toFixed(2) ?? 'n/a'} |`
    );
  };
  const t = trickle as Latency | null;
  const tb = trickleBase as Latency | null;
  const th = trickleHang as (Latency & { hung: number }) | null;
  if (t === null || tb === null || th === null) throw new Error('latency not measured');
  const summary =
    `Webhooks: ${fmtInt(mOne.rate)} deliveries/s (one client) and ${fmtInt(mMulti.rate)}/s (${MULTI_CLIENTS} clients) vs baseline ${fmtInt(b20.rate)}/s at ${DISPATCHER_CONCURRENCY} in flight` +
    ` (${pct(mOne.rate, b20.rate)} / ${pct(mMulti.rate, b20.rate)}; one client vs baseline at ${ONE_CLIENT_CONCURRENCY}: ${pct(mOne.rate, bOne.rate)});` +
    ` event-to-delivery p50 ${fmtMs(t.p50)}, p99 ${fmtMs(t.p99)}, with another client's receiver hanging p50 ${fmtMs(th.p50)}, p99 ${fmtMs(th.p99)}` +
    ` (baseline POST p50 ${fmtMs(tb.p50)}, p99 ${fmtMs(tb.p99)})`;

  const others = [...mooringRuns, ...baselineRuns].map((r) => r.cpu.other).filter((x): x is number => x !== null).sort((a, b) => a - b);
  const noiseLine = others.length === 0 ? '' :
    `Other processes on the machine used ${others[0]?.toFixed(2)}–${others.at(-1)?.toFixed(2)} cores (median ${others[Math.floor((others.length - 1) / 2)]?.toFixed(2)}) during these runs` +
    ` (the "other" column): on a shared machine the runs vary a lot, which is why each figure is set beside a baseline measured in the same run.`;
  const targets =
    `Targets: with another client's receiver hanging, p99 ${fmtMs(th.p99)} (under 500 ms: ${th.p99 < 500 ? 'met' : 'not met'}; p99 ${fmtMs(t.p99)} without it);` +
    ` ${MULTI_CLIENTS} clients at ${pct(mMulti.rate, b20.rate)} of the bare loop at ${DISPATCHER_CONCURRENCY} in flight (70 % or more: ${mMulti.rate >= 0.7 * b20.rate ? 'met' : 'not met'}).`;

  const markdown = `## Webhook delivery

_Measured ${new Date().toISOString()} on ${await environmentLine()}; re-run this section alone with \`BENCH_ONLY=webhooks\`._

Throughput: ${fmtInt(EVENTS)} \`syncCompleted\` events logged at once (one SQL insert, due now), delivered by Mooring's dispatcher in a
worker process to a local receiver; deliveries/s between the first and the last arrival. Median of ${REPEATS} runs, interleaved.

| Deliverer | Deliveries/s (median) | Each run | Insert → last delivery | vs baseline, ${DISPATCHER_CONCURRENCY} in flight | vs baseline, ${ONE_CLIENT_CONCURRENCY} in flight | Failed attempts / duplicates | CPU cores: deliverer / PostgreSQL / other |
|---|---:|---|---:|---:|---:|---:|---|
${mRow(mOne)}
${mRow(mMulti)}
${baselines().map(bRow).join('\n')}

${noiseLine}

Latency: ${Math.round(RATE * TRICKLE_S)} events logged one at a time at ${RATE}/s for one client (as syncs finishing would log them), while the
worker runs; latency = arrival at the receiver (wall clock) − the event's \`created_at\`. The baseline POSTs each body the moment it
is "created", at the same rate: its latency is the POST round trip alone. The second Mooring row is the same run while another
client's receiver never answers (its requests are read and left open) and that client has ${HANG_BACKLOG} due events: its deliveries hold
their slots until the 10 s delivery time-out, and must not delay the first client's.

| | p50 | p90 | p99 | max | Events |
|---|---:|---:|---:|---:|---:|
| Mooring: event logged → delivered | **${fmtMs(t.p50)}** | ${fmtMs(t.p90)} | **${fmtMs(t.p99)}** | ${fmtMs(t.max)} | ${t.n} |
| Mooring, another client's receiver hanging (${th.hung} of its requests left unanswered) | **${fmtMs(th.p50)}** | ${fmtMs(th.p90)} | **${fmtMs(th.p99)}** | ${fmtMs(th.max)} | ${th.n} |
| Baseline: POST round trip | ${fmtMs(tb.p50)} | ${fmtMs(tb.p90)} | ${fmtMs(tb.p99)} | ${fmtMs(tb.max)} | ${tb.n} |

${targets}

The dispatcher as measured (read from src/): the worker polls for due events every ${POLL_MS} ms (src/timers.ts \`webhookPollMs\`), so an
event logged while the dispatcher is idle waits up to ${POLL_MS} ms (${POLL_MS / 2} ms on average) before its first attempt. Each lease takes up to
${LEASE_BATCH} events in all and ${PER_CLIENT_HELD} per client (\`PER_CLIENT_HELD\`, counting those it already holds)${
  PER_CLIENT_IN_FLIGHT === null ? '' : `; at most ${PER_CLIENT_IN_FLIGHT} go to one client at a time (\`PER_CLIENT_IN_FLIGHT\`)`
}, ${DISPATCHER_CONCURRENCY} in all (\`WEBHOOK_CONCURRENCY\`), so one client's backlog is delivered ${ONE_CLIENT_CONCURRENCY} at a time. Slots are scheduled one
by one: a finished delivery starts the next startable leased event at once, and a client with less than two rounds of its slots queued gets its
next due events leased at once, without waiting for other clients' deliveries. Finished attempts are recorded in batches (one statement
per batch)${FRESH_CONNECTIONS ? ', and each POST opens a new connection (node:http, agent: false)' : ', and connections to receivers are kept alive and reused (node:http Agent, keepAlive)'}.

Method:
- Database \`${WEBHOOK_DB}\` (dropped afterwards). One endpoint per client (\`webhook_endpoints\`), all pointing at the receiver:
  bench/webhook-receiver.ts, node:http on 127.0.0.1 in its own process, which checks every \`Mooring-Signature\` with
  \`verify\` from src/webhooks/signing.ts and answers 200 \`ok\`; no bad signatures or duplicates were accepted as new.
- Mooring: a worker process built by createServer (role \`worker\`: dispatcher concurrency ${DISPATCHER_CONCURRENCY}, polled every ${POLL_MS} ms; the
  scheduler, reaper and event sweep run too but find nothing to do). Sandbox mode allows the loopback receiver.
- Baseline: bench/webhook-baseline.ts, a child process that loads the same events, builds the dispatcher's exact body
  (\`{ id, eventType, userId, payload }\`), signs it with \`sign\` and POSTs it with \`fetch\` and the same headers, discarding the
  response body, with ${DISPATCHER_CONCURRENCY} (the dispatcher's concurrency) or ${ONE_CLIENT_CONCURRENCY} (what one client gets) requests in flight, on
  keep-alive connections (fetch) or with a new connection per POST (as the dispatcher did before it kept connections alive); no database work.

The dispatcher's lease query (\`webhooksRepository.leaseDue\`, as sent: up to ${LEASE_BATCH}, ${PER_CLIENT_HELD} per client) with a backlog of
${fmtInt(EVENTS)} due events of one client:

\`\`\`
${plan}
\`\`\`
`;
  return { markdown, summary };
}
