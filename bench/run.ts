/**
 * `npm run bench`: measures Mooring on PostgreSQL and writes BENCHMARKS.md. Sections (each one selectable):
 *
 *   api        the two hot paths of Mooring's API against a bare Fastify baseline:
 *                1. GET /users/:userId/connections (user with 5 connections among 100,000 users), one token reused;
 *                2. POST /oidc/token, client_credentials with client_secret_basic (the official client's hot path);
 *                3. baseline: bare Fastify 5, one route running the same query on a pg Pool of the same size.
 *   sync       sync throughput of worker processes against the limit set by bank latency (bench/section-sync.ts)
 *   scheduler  cost of one scheduler tick with 1,000 due among 10,000 and 1,000,000 connections (section-scheduler.ts)
 *   memory     a worker process's memory over many syncs (section-sync.ts)
 *   backlog    queue claims per sync while one worker drains 100,000 syncs queued at once (section-sync.ts)
 *   webhooks   webhook delivery throughput and latency against a bare POST loop (section-webhooks.ts)
 *   console    the operator console's admin API with 1,000,000 connections and 20,000,000 provider calls (section-console.ts)
 *
 * Every server and worker runs in its own child process; the load generators run here.
 *
 * Environment:
 *   BENCH_ONLY          comma-separated sections (api, sync, scheduler, memory, backlog, webhooks, console) and/or API scenarios
 *                       (baseline, connections, token, x-*); default: every section. Sections not run keep their
 *                       previous text in BENCHMARKS.md.
 *   BENCH_DATABASE_URL  admin connection (default postgres://postgres@127.0.0.1:5432/postgres)
 *   BENCH_REPEATS       runs per scenario, median quoted (3)
 *   BENCH_MAX_WAIT_S    time budget for waiting for a quiet machine and repeating disturbed runs (150)
 *   BENCH_KEEP_DB=1     keep the bench databases afterwards
 *  api:
 *   BENCH_CONNECTIONS   concurrent keep-alive connections (32)
 *   BENCH_DURATION_S    measured seconds per run (10)      BENCH_WARMUP_S  warm-up seconds (2)
 *   BENCH_POOL          database pool size of both servers (10, Mooring's default)
 *   BENCH_USERS         background users (100000)
 *   BENCH_EXPERIMENTS=1 also run the what-if experiments (x-* scenarios, see variants.ts): Mooring with
 *                       emulated src/ changes, each in a fresh process; adds about 5 minutes
 *   BENCH_PROFILE=1     CPU-profile each server during each measured window (bench/profiles/*.cpuprofile;
 *                       summarise with bench/profile-summary.ts); in the sync section the API (banks) process and
 *                       the first worker; disturbed runs are not repeated; BENCHMARKS.md is not written
 *   BENCH_TRACE=1       count and time every SQL statement Mooring sends; prints queries per request;
 *                       BENCHMARKS.md is not written
 *  sync / memory:
 *   BENCH_SYNC_LATENCY_MS (200)  BENCH_SYNC_WORKERS (2)  BENCH_SYNC_CONCURRENCY per worker (10)
 *   BENCH_SYNC_WARMUP_S (8)  BENCH_SYNC_WINDOW_S (15)
 *   BENCH_MEMORY_SYNCS (100000)  BENCH_MEMORY_MAX_S (150)  BENCH_MEMORY_CONCURRENCY (50)  BENCH_MEMORY_SAMPLE_S (10)
 *  backlog:
 *   BENCH_BACKLOG_SYNCS (100000)  BENCH_BACKLOG_MAX_S (180)  BENCH_BACKLOG_CONCURRENCY (50)
 *  scheduler:
 *   BENCH_SCHED_SIZES (10000,1000000)  BENCH_SCHED_TICKS (15)
 *  webhooks:
 *   BENCH_WEBHOOK_EVENTS (10000)  BENCH_WEBHOOK_CLIENTS (50)  BENCH_WEBHOOK_REPEATS (BENCH_REPEATS)
 *   BENCH_WEBHOOK_RATE (50/s)  BENCH_WEBHOOK_TRICKLE_S (15)
 *  console:
 *   BENCH_SCALE (1: 1,000,000 connections, 20,000,000 calls; 0.01 for a quick check)  BENCH_CONSOLE_SAMPLES (200)
 *   BENCH_CONSOLE_SEARCH_PATH (/admin/api/search?q={q})  BENCH_CONSOLE_CONNECTION_PATH (/admin/api/connections/{connectionId})
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectionsRepository } from '../src/connections/repository.ts';
import type { Queryable } from '../src/db/db.ts';
import { sandboxCatalog } from '../src/providers/catalog.ts';
import { LONGEST_WINDOW_MS } from '../src/syncs/cadence.ts';
import {
  ADMIN_URL, BENCH_DIR, dropDatabase, envNum, fmtInt, fmtMs, freePort, KEEP_DB, log, machineBusyMicros, MAX_WAIT_MS, postgresCpuByPid,
  postgresCpuSince, quiet, ROOT, startChild, stopAllChildren, waitForQuiet, withClient, withDatabase, type Child,
} from './common.ts';
import type { QueryStat } from './ipc.ts';
import { httpRequest, runLoad, type LoadResult } from './load.ts';
import { SCHED_DB, runSchedulerSection } from './section-scheduler.ts';
import { closeSyncLab, runBacklogSection, runMemorySection, runSyncSection, SYNC_DB, type SectionResult } from './section-sync.ts';
import { runWebhooksSection, WEBHOOK_DB } from './section-webhooks.ts';
import { CONSOLE_DB, runConsoleSection } from './section-console.ts';
import { seed, type SeedCounts } from './seed.ts';

const OUTPUT = path.join(ROOT, 'BENCHMARKS.md');

const DB_NAME = 'mooring_bench';
const CONNECTIONS = envNum('BENCH_CONNECTIONS', 32);
const DURATION_MS = envNum('BENCH_DURATION_S', 10) * 1000;
const WARMUP_MS = envNum('BENCH_WARMUP_S', 2) * 1000;
const REPEATS = envNum('BENCH_REPEATS', 3);
const POOL = envNum('BENCH_POOL', 10);
const USERS = envNum('BENCH_USERS', 100_000);
const PROFILE = process.env.BENCH_PROFILE === '1';
const TRACE = process.env.BENCH_TRACE === '1';
const PROFILE_DIR = path.join(BENCH_DIR, 'profiles');
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
const TARGET_USER_ID = 'bbbbbbbbbbbb000000000005';

interface ScenarioDef {
  name: string;
  label: string;
  server: 'mooring' | 'baseline';
  request: 'connections' | 'token';
  /** Database-layer variants (variants.ts) of an experiment; '' for the real measurements. */
  variants: string;
  /** Experiments run in a fresh server process per run (started before, stopped after). */
  experiment: boolean;
}

const MAIN: ScenarioDef[] = [
  { name: 'baseline', label: 'Baseline: bare Fastify 5 + pg, same query', server: 'baseline', request: 'connections', variants: '', experiment: false },
  { name: 'connections', label: 'Mooring `GET /users/:userId/connections` (5 connections, token reused)', server: 'mooring', request: 'connections', variants: '', experiment: false },
  { name: 'token', label: 'Mooring `POST /oidc/token` (client_credentials, client_secret_basic)', server: 'mooring', request: 'token', variants: '', experiment: false },
];
const x = (name: string, label: string, variants: string, server: ScenarioDef['server'] = 'mooring', request: ScenarioDef['request'] = 'connections'): ScenarioDef => ({
  name, label, server, request, variants, experiment: true,
});
const EXPERIMENTS: ScenarioDef[] = [
  x('x-control', 'connections, Mooring as is (control)', ''),
  x('x-token-cache', 'connections, token look-up cached in memory', 'cache-token'),
  x('x-no-owner-query', 'connections, no separate ownership query', 'skip-owner'),
  x('x-both', 'connections, token cached + no ownership query', 'cache-token,skip-owner'),
  x('x-prepared', 'connections, all statements prepared', 'prepared'),
  x('x-all', 'connections, prepared + token cached + no ownership query', 'prepared,cache-token,skip-owner'),
  x('x-baseline-prepared', 'baseline, statement prepared', 'prepared', 'baseline'),
  x('x-token-control', 'token endpoint, Mooring as is (control)', '', 'mooring', 'token'),
  x('x-token-prepared', 'token endpoint, all statements prepared', 'prepared', 'mooring', 'token'),
  x('x-token-client-cache', 'token endpoint, client look-up cached in memory', 'cache-client', 'mooring', 'token'),
  x('x-token-async-commit', 'token endpoint, token stored with synchronous_commit off', 'async-token', 'mooring', 'token'),
  x('x-token-both', 'token endpoint, client cached + synchronous_commit off', 'cache-client,async-token', 'mooring', 'token'),
];
const ALL_SCENARIOS = [...MAIN, ...EXPERIMENTS];
const SECTIONS = ['api', 'sync', 'scheduler', 'memory', 'backlog', 'webhooks', 'console'] as const;
type Section = (typeof SECTIONS)[number];
const isSection = (n: string): n is Section => (SECTIONS as readonly string[]).includes(n);

/** Sections to run, and the API scenarios of the api section. */
const { SELECTED_SECTIONS, SELECTED } = ((): { SELECTED_SECTIONS: Set<Section>; SELECTED: ScenarioDef[] } => {
  const apiDefault = process.env.BENCH_EXPERIMENTS === '1' ? ALL_SCENARIOS : MAIN;
  const raw = process.env.BENCH_ONLY;
  if (raw === undefined || raw === '') return { SELECTED_SECTIONS: new Set(SECTIONS), SELECTED: apiDefault };
  const sections = new Set<Section>();
  const scenarios: ScenarioDef[] = [];
  for (const n of raw.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    if (isSection(n)) {
      sections.add(n);
      continue;
    }
    const d = ALL_SCENARIOS.find((x) => x.name === n);
    if (d === undefined) {
      throw new Error(`BENCH_ONLY: unknown section or scenario "${n}" (sections: ${SECTIONS.join(', ')}; API scenarios: ${ALL_SCENARIOS.map((x) => x.name).join(', ')})`);
    }
    sections.add('api');
    scenarios.push(d);
  }
  return { SELECTED_SECTIONS: sections, SELECTED: scenarios.length > 0 ? scenarios : apiDefault };
})();
/** Extra warm-up for experiments' freshly started servers (JIT). */
const FRESH_EXTRA_WARMUP_MS = 3000;

// ---------------------------------------------------------------------------------------------
// Measurements

interface Measurement extends LoadResult {
  scenario: string;
  run: number;
  /** Cores used during the measured window by the server process, PostgreSQL and this generator. */
  serverCores: number;
  postgresCores: number | null;
  generatorCores: number;
  /** Whole machine, and what is left for processes outside the bench (noise). */
  machineCores: number | null;
  otherCores: number | null;
}

async function queryStats(server: Child): Promise<Map<string, QueryStat>> {
  const r = await server.ask({ type: 'queries' });
  return new Map(r.type === 'queries' ? r.stats.map((q) => [q.sql, q]) : []);
}

/** measureOnce, repeated (within the wait budget) while processes outside the bench disturb it. */
async function measure(scenario: string, run: number, server: Child, request: Buffer, expectStatus: number, extraWarmupMs = 0): Promise<Measurement> {
  for (;;) {
    const m = await measureOnce(scenario, run, server, request, expectStatus, extraWarmupMs);
    const cost = WARMUP_MS + extraWarmupMs + DURATION_MS;
    if (PROFILE || TRACE || m.otherCores === null || m.otherCores <= quiet.disturbedCores || quiet.budgetMs < cost) return m;
    quiet.budgetMs -= cost;
    quiet.disturbedRuns += 1;
    log(`  ${scenario} run ${run} was disturbed (${m.otherCores.toFixed(2)} cores used outside the bench); repeating it`);
  }
}

async function measureOnce(scenario: string, run: number, server: Child, request: Buffer, expectStatus: number, extraWarmupMs: number): Promise<Measurement> {
  if (!PROFILE && !TRACE) await waitForQuiet();
  const tracing = TRACE && server.name.startsWith('Mooring');
  let queries0 = new Map<string, QueryStat>();
  let serverCpu0 = 0;
  let pgCpu0: Map<number, number> | null = null;
  let genCpu0 = 0;
  let busy0: number | null = null;
  let t0 = 0;
  const result = await runLoad({
    host: '127.0.0.1',
    port: server.port,
    request,
    connections: CONNECTIONS,
    warmupMs: WARMUP_MS + extraWarmupMs,
    durationMs: DURATION_MS,
    expectStatus,
    async onMeasureStart() {
      t0 = performance.now();
      const g = process.cpuUsage();
      genCpu0 = g.user + g.system;
      pgCpu0 = postgresCpuByPid(DB_NAME);
      busy0 = machineBusyMicros();
      serverCpu0 = await server.cpuMicros();
      if (PROFILE) await server.ask({ type: 'profile-start' });
      if (tracing) queries0 = await queryStats(server);
    },
  });
  const elapsedUs = (performance.now() - t0) * 1000;
  const serverCpu1 = await server.cpuMicros();
  if (PROFILE) {
    const file = path.join(PROFILE_DIR, `${scenario}-run${run}.cpuprofile`);
    await server.ask({ type: 'profile-stop', file });
    log(`  CPU profile of ${server.name} written to ${path.relative(ROOT, file)}`);
  }
  if (tracing) {
    const after = await queryStats(server);
    log(`  SQL sent by Mooring per ${scenario} request (count per request, mean wall time incl. waiting for a pooled connection):`);
    const rows = [...after.values()]
      .map((q) => ({ sql: q.sql, count: q.count - (queries0.get(q.sql)?.count ?? 0), ms: q.totalMs - (queries0.get(q.sql)?.totalMs ?? 0) }))
      .filter((q) => q.count > 0)
      .sort((a, b) => b.count - a.count);
    for (const q of rows) log(`    ${(q.count / Math.max(1, result.requests)).toFixed(2)} × ${(q.ms / q.count).toFixed(2)} ms  ${q.sql.slice(0, 150)}`);
  }
  const pgCpu = postgresCpuSince(pgCpu0, postgresCpuByPid(DB_NAME));
  const busy1 = machineBusyMicros();
  const gen = process.cpuUsage();
  const serverCores = (serverCpu1 - serverCpu0) / elapsedUs;
  const postgresCores = pgCpu === null ? null : pgCpu / elapsedUs;
  const generatorCores = (gen.user + gen.system - genCpu0) / elapsedUs;
  const machineCores = busy0 === null || busy1 === null ? null : (busy1 - busy0) / elapsedUs;
  const m: Measurement = {
    ...result,
    scenario,
    run,
    serverCores,
    postgresCores,
    generatorCores,
    machineCores,
    otherCores: machineCores === null ? null : Math.max(0, machineCores - serverCores - (postgresCores ?? 0) - generatorCores),
  };
  log(
    `  ${scenario.padEnd(19)} run ${run}: ${fmtInt(m.rps)} req/s, p50 ${fmtMs(m.p50Ms)}, p99 ${fmtMs(m.p99Ms)}` +
      ` (${m.requests} requests, ${m.badStatus} bad status, ${m.errors} socket errors;` +
      ` CPU cores: server ${m.serverCores.toFixed(2)}, postgres ${m.postgresCores?.toFixed(2) ?? 'n/a'}, generator ${m.generatorCores.toFixed(2)},` +
      ` other processes ${m.otherCores?.toFixed(2) ?? 'n/a'})`,
  );
  if (m.badStatus > 0) log(`    first unexpected response:\n${m.firstBadStatus ?? ''}`);
  return m;
}


function medianRun(ms: Measurement[]): Measurement {
  const sorted = [...ms].sort((a, b) => a.rps - b.rps);
  const m = sorted[Math.floor((sorted.length - 1) / 2)];
  if (m === undefined) throw new Error('no measurements');
  return m;
}

// ---------------------------------------------------------------------------------------------
// Setup helpers

async function jsonRequest(url: string, init: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body };
}

const basicAuth = (id: string, secret: string): string =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

const TOKEN_BODY = new URLSearchParams({ grant_type: 'client_credentials', scope: 'user:read' }).toString();

/** The SQL text and parameters listForClientUser sends, captured by a recording Queryable (for EXPLAIN). */
async function capturedListQuery(clientId: string, userId: string): Promise<{ text: string; params: unknown[] }> {
  let captured: { text: string; params: unknown[] } | null = null;
  const recorder: Queryable = {
    async query<R>(text: string, params?: readonly unknown[]) {
      captured = { text, params: [...(params ?? [])] };
      return { rows: [] as R[], rowCount: 0 };
    },
  };
  await connectionsRepository(recorder).listForClientUser(clientId, userId, new Date(Date.now() - LONGEST_WINDOW_MS));
  if (captured === null) throw new Error('listForClientUser ran no query');
  return captured;
}

// ---------------------------------------------------------------------------------------------

interface Machine {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  postgres: string;
  os: string;
}

async function runApiSection(): Promise<SectionResult> {
  const benchUrl = withDatabase(ADMIN_URL, DB_NAME);
  const catalog = sandboxCatalog('http://unused');
  const children: Child[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of children.splice(0).reverse()) await c.stop().catch(() => undefined);
    if (!KEEP_DB) {
      await withClient(ADMIN_URL, (c) => c.query(`drop database if exists ${DB_NAME} with (force)`)).catch(() => undefined);
    }
  };

  try {
    log(`API: scenarios ${SELECTED.map((d) => d.name).join(', ')}; ${CONNECTIONS} connections, ${WARMUP_MS / 1000} s warm-up + ${DURATION_MS / 1000} s measured, ${REPEATS} runs each; pool ${POOL}`);
    log(`(re)creating database ${DB_NAME}`);
    await withClient(ADMIN_URL, async (c) => {
      await c.query(`drop database if exists ${DB_NAME} with (force)`);
      await c.query(`create database ${DB_NAME}`);
    });
    if (PROFILE) fs.mkdirSync(PROFILE_DIR, { recursive: true });

    const startMooring = async (name: string, variants: string): Promise<Child> => {
      const port = await freePort();
      return startChild(name, 'mooring-server.ts', [benchUrl, String(port), ADMIN_TOKEN, String(POOL), variants], port);
    };
    let benchClientId = '';
    const startBaseline = async (name: string, variants: string): Promise<Child> => {
      const port = await freePort();
      return startChild(name, 'baseline-server.ts', [benchUrl, String(port), String(POOL), benchClientId, variants], port);
    };

    log(`starting Mooring (child process${TRACE ? ', tracing SQL' : ''}); it runs the migrations`);
    const mooring = await startMooring('Mooring', TRACE ? 'trace' : '');
    children.push(mooring);
    const base = `http://127.0.0.1:${mooring.port}`;

    log('registering the bench client over RFC 7591 (client_secret_basic, scope user:read)');
    const reg = await jsonRequest(`${base}/oidc/reg`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'Bench app',
        redirect_uris: ['http://127.0.0.1:1/callback'],
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        scope: 'user:read',
      }),
    });
    if (reg.status !== 201 || typeof reg.body.client_id !== 'string' || typeof reg.body.client_secret !== 'string') {
      throw new Error(`client registration failed: ${reg.status} ${JSON.stringify(reg.body)}`);
    }
    const clientId = reg.body.client_id;
    const clientSecret = reg.body.client_secret;
    benchClientId = clientId;

    log(`seeding ${fmtInt(USERS)} users with SQL`);
    const seedStart = performance.now();
    const byName = (n: string): string => {
      const e = catalog.find((c) => c.name === n);
      if (e === undefined) throw new Error(`no sandbox provider ${n}`);
      return e.id;
    };
    const counts: SeedCounts = await withClient(benchUrl, (c) =>
      seed(
        c,
        {
          clientId,
          users: USERS,
          providerIds: catalog.filter((e) => e.type === 'api' || e.type === 'test').map((e) => e.id),
          targetProviderIds: ['Modelo Open Banking Mock', 'Handelsbanken', 'Nationwide Open Banking', 'Aviva', 'Zoopla'].map(byName),
          targetUserId: TARGET_USER_ID,
        },
        log,
      ),
    );
    const seedSeconds = (performance.now() - seedStart) / 1000;
    log(`seeded in ${seedSeconds.toFixed(1)} s: ${fmtInt(counts.users)} users, ${fmtInt(counts.connections)} connections, ${fmtInt(counts.accounts)} accounts, ${fmtInt(counts.syncs)} syncs`);

    const q = await capturedListQuery(clientId, TARGET_USER_ID);
    const plan = await withClient(benchUrl, async (c) => {
      await c.query(q.text, q.params); // warm the catalog caches so the plan shows steady-state timings
      const r = await c.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers, costs off) ${q.text}`, q.params);
      return r.rows.map((row) => row['QUERY PLAN']).join('\n');
    });

    log('getting ONE access token (client_credentials, client_secret_basic, scope user:read) to reuse');
    const tok = await jsonRequest(`${base}/oidc/token`, {
      method: 'POST',
      headers: { authorization: basicAuth(clientId, clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
      body: TOKEN_BODY,
    });
    if (tok.status !== 200 || typeof tok.body.access_token !== 'string') throw new Error(`token request failed: ${tok.status} ${JSON.stringify(tok.body)}`);
    const accessToken = tok.body.access_token;

    const connPath = `/users/${TARGET_USER_ID}/connections`;
    const checkConnections = async (server: Child, auth: boolean): Promise<number> => {
      const r = await jsonRequest(`http://127.0.0.1:${server.port}${connPath}`, auth ? { headers: { authorization: `Bearer ${accessToken}` } } : {});
      const data = r.body.data;
      if (r.status !== 200 || !Array.isArray(data) || data.length !== 5) {
        throw new Error(`${server.name}: GET ${connPath} did not answer 5 connections: ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
      }
      return Buffer.byteLength(JSON.stringify(r.body));
    };
    const mooringBytes = await checkConnections(mooring, true);
    log(`GET ${connPath} answers 5 connections (${mooringBytes} bytes)`);

    let baseline: Child | null = null;
    let baselineBytes = 0;
    if (SELECTED.some((d) => d.server === 'baseline' && !d.experiment)) {
      log('starting the baseline (bare Fastify, child process)');
      baseline = await startBaseline('baseline', '');
      children.push(baseline);
      baselineBytes = await checkConnections(baseline, false);
    }

    const requestFor = (d: ScenarioDef, server: Child): Buffer => {
      const host = `127.0.0.1:${server.port}`;
      if (d.request === 'token') {
        return httpRequest('POST', host, '/oidc/token', { Authorization: basicAuth(clientId, clientSecret), 'Content-Type': 'application/x-www-form-urlencoded' }, TOKEN_BODY);
      }
      return httpRequest('GET', host, connPath, d.server === 'mooring' ? { Authorization: `Bearer ${accessToken}` } : {});
    };

    const results: Measurement[] = [];
    const estimate = SELECTED.reduce((a, d) => a + REPEATS * (WARMUP_MS + DURATION_MS + (d.experiment ? FRESH_EXTRA_WARMUP_MS + 1500 : 0)), 0) / 1000;
    log(`measuring (about ${Math.round(estimate)} s plus waits for a quiet machine); scenarios are interleaved run by run`);
    for (let run = 1; run <= REPEATS; run += 1) {
      for (const d of SELECTED) {
        if (!d.experiment) {
          const server = d.server === 'mooring' ? mooring : baseline;
          if (server === null) throw new Error('baseline not started');
          results.push(await measure(d.name, run, server, requestFor(d, server), 200));
          continue;
        }
        const name = `${d.server === 'mooring' ? 'Mooring' : 'baseline'} [${d.name}]`;
        const variants = [d.variants, TRACE && d.server === 'mooring' ? 'trace' : ''].filter((v) => v !== '').join(',');
        const server = d.server === 'mooring' ? await startMooring(name, variants) : await startBaseline(name, variants);
        children.push(server);
        try {
          if (d.request === 'connections') await checkConnections(server, d.server === 'mooring');
          results.push(await measure(d.name, run, server, requestFor(d, server), 200, FRESH_EXTRA_WARMUP_MS));
        } finally {
          children.splice(children.indexOf(server), 1);
          await server.stop();
        }
      }
    }

    const tokenRows = await withClient(benchUrl, async (c) => (await c.query<{ n: string }>(`select count(*) as n from oidc_models where kind = 'ClientCredentials'`)).rows[0]?.n ?? '?');
    log(`oidc_models now holds ${tokenRows} ClientCredentials tokens`);

    await cleanup();

    const medians = new Map<string, Measurement>();
    for (const d of SELECTED) {
      const runs = results.filter((r) => r.scenario === d.name);
      if (runs.length > 0) medians.set(d.name, medianRun(runs));
    }
    const md = renderMarkdown({ machine: machineInfo(await postgresVersion()), counts, seedSeconds, results, medians, plan, mooringBytes, baselineBytes });
    console.log(`\n${tableOf(MAIN, medians, results)}\n\n${ratioLine(medians)}\n`);
    if (SELECTED.some((d) => d.experiment)) console.log(`${experimentsTable(medians)}\n`);
    if (PROFILE || TRACE) {
      log(`profiling/tracing run${PROFILE ? `; CPU profiles in ${path.relative(ROOT, PROFILE_DIR)}/ (summarise with: npx node bench/profile-summary.ts <file>)` : ''}`);
    }
    const c = medians.get('connections');
    const b = medians.get('baseline');
    return {
      markdown: md,
      summary: `API: ${[...medians.values()].map((m) => `${m.scenario} ${fmtInt(m.rps)} req/s`).join(', ')}${c !== undefined && b !== undefined ? `; connections/baseline ${((100 * c.rps) / b.rps).toFixed(0)} %` : ''}`,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function postgresVersion(): Promise<string> {
  return withClient(ADMIN_URL, async (c) => (await c.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]?.v ?? '?');
}

function machineInfo(pgVersion: string): Machine {
  return {
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: os.totalmem() / 1024 ** 3,
    node: process.version,
    postgres: pgVersion,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

// ---------------------------------------------------------------------------------------------
// BENCHMARKS.md: one block per section between markers, so a run of some sections keeps the others

const SECTION_TITLES: Record<Section, string> = {
  api: 'API endpoints',
  sync: 'Sync throughput',
  scheduler: 'Scheduler cost per tick',
  memory: 'Worker memory',
  backlog: 'Queue claims in a long backlog',
  webhooks: 'Webhook delivery',
  console: 'Operator console queries at scale',
};
const begin = (s: Section): string => `<!-- bench:${s} -->`;
const end = (s: Section): string => `<!-- /bench:${s} -->`;

function previousBlocks(): Map<Section, string> {
  const out = new Map<Section, string>();
  let text: string;
  try {
    text = fs.readFileSync(OUTPUT, 'utf8');
  } catch {
    return out;
  }
  for (const s of SECTIONS) {
    const a = text.indexOf(begin(s));
    const b = text.indexOf(end(s));
    if (a !== -1 && b > a) out.set(s, text.slice(a + begin(s).length, b).trim());
  }
  return out;
}

function writeReport(results: Map<Section, SectionResult>, machine: Machine): void {
  const previous = previousBlocks();
  const blocks: string[] = [];
  const kept: Section[] = [];
  for (const s of SECTIONS) {
    const fresh = results.get(s);
    const body = fresh?.markdown.trim() ?? previous.get(s);
    if (body === undefined) continue;
    if (fresh === undefined) kept.push(s);
    blocks.push(`${begin(s)}\n${body}\n${end(s)}`);
  }
  const contents = blocks.map((b, i) => `${i + 1}. ${SECTIONS.filter((s) => blocks[i]?.startsWith(begin(s))).map((s) => SECTION_TITLES[s]).join('')}`);
  const m = machine;
  const md = `# Benchmarks

Generated by \`npm run bench\` (bench/run.ts); \`BENCH_ONLY=<sections>\` re-measures some sections and keeps the others' previous text.

- **Date:** ${new Date().toISOString()} (sections run: ${[...results.keys()].join(', ') || 'none'}${kept.length > 0 ? `; kept from an earlier run: ${kept.join(', ')}` : ''})
- **Machine:** ${m.nproc} CPUs (nproc) — ${m.cpuModel}; ${m.memoryGiB.toFixed(1)} GiB memory; ${m.os}
- **Node:** ${m.node}; **PostgreSQL:** ${m.postgres} (same machine, 127.0.0.1)
- Every server, worker and receiver runs in its own child process; generator, Mooring and PostgreSQL share the same ${m.nproc} CPUs.
  Before each measured run the bench waits for other processes to go quiet, and repeats a run disturbed by more than
  ${quiet.disturbedCores} cores of outside work, within a shared budget of ${MAX_WAIT_MS / 1000} s (${quiet.disturbedRuns} run(s) repeated this time).

Sections: ${contents.join(' ')}

${blocks.join('\n\n')}
`;
  fs.writeFileSync(OUTPUT, md);
  log(`wrote ${path.relative(process.cwd(), OUTPUT) || OUTPUT}`);
}

async function main(): Promise<void> {
  const cleanup = async (): Promise<void> => {
    await stopAllChildren();
    await closeSyncLab();
    for (const db of [DB_NAME, SYNC_DB, SCHED_DB, WEBHOOK_DB, CONSOLE_DB]) await dropDatabase(db);
  };
  process.on('SIGINT', () => {
    void cleanup().finally(() => process.exit(130));
  });
  const order: Section[] = ['api', 'sync', 'memory', 'backlog', 'scheduler', 'webhooks', 'console'];
  const run = order.filter((s) => SELECTED_SECTIONS.has(s));
  log(`sections: ${run.join(', ')}`);
  const results = new Map<Section, SectionResult>();
  const runners: Record<Section, () => Promise<SectionResult>> = {
    api: runApiSection,
    sync: runSyncSection,
    memory: runMemorySection,
    backlog: runBacklogSection,
    scheduler: runSchedulerSection,
    webhooks: runWebhooksSection,
    console: runConsoleSection,
  };
  const failed: Section[] = [];
  try {
    for (const s of run) {
      const t = performance.now();
      log(`=== ${SECTION_TITLES[s]} ===`);
      try {
        results.set(s, await runners[s]());
        log(`=== ${SECTION_TITLES[s]}: done in ${((performance.now() - t) / 1000).toFixed(0)} s ===`);
      } catch (err) {
        // One section failing does not lose the others: its previous text stays in BENCHMARKS.md.
        failed.push(s);
        console.error(`=== ${SECTION_TITLES[s]} FAILED ===\n`, err);
        await stopAllChildren();
        await closeSyncLab();
      }
      // The sync lab (database, bank and engine processes) serves sync, memory and backlog; closed after the last of them.
      const syncLab: Section[] = ['sync', 'memory', 'backlog'];
      if (syncLab.includes(s) && !run.slice(run.indexOf(s) + 1).some((x) => syncLab.includes(x))) {
        await closeSyncLab();
        await dropDatabase(SYNC_DB);
      }
    }
  } finally {
    await cleanup();
  }
  console.log('\nSummary:');
  for (const r of results.values()) console.log(`  ${r.summary}`);
  if (PROFILE || TRACE) {
    log('profiling/tracing run: BENCHMARKS.md left unchanged');
    return;
  }
  if (results.size > 0) writeReport(results, machineInfo(await postgresVersion()));
  if (failed.length > 0) {
    console.error(`sections that failed: ${failed.join(', ')} (their previous text, if any, was kept)`);
    process.exitCode = 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function tableOf(defs: ScenarioDef[], medians: Map<string, Measurement>, results: Measurement[]): string {
  const lines = [
    `| Scenario | Requests/s (median of ${REPEATS}) | p50 | p99 | Requests/s of each run | Errors |`,
    '|---|---:|---:|---:|---|---:|',
  ];
  for (const d of [...defs].sort((a, b) => (a.name === 'baseline' ? 1 : 0) - (b.name === 'baseline' ? 1 : 0))) {
    const m = medians.get(d.name);
    if (m === undefined) continue;
    const runs = results.filter((r) => r.scenario === d.name);
    const errs = runs.reduce((a, r) => a + r.badStatus + r.errors, 0);
    lines.push(`| ${d.label} | **${fmtInt(m.rps)}** | ${fmtMs(m.p50Ms)} | ${fmtMs(m.p99Ms)} | ${runs.map((r) => fmtInt(r.rps)).join(' / ')} | ${errs} |`);
  }
  return lines.join('\n');
}

function ratioLine(medians: Map<string, Measurement>): string {
  const c = medians.get('connections');
  const b = medians.get('baseline');
  if (c === undefined || b === undefined) return 'Ratio connections / baseline: n/a (both scenarios are needed).';
  const ratio = c.rps / b.rps;
  return `**Connections endpoint throughput / baseline throughput: ${(ratio * 100).toFixed(0)} %** (target ≥ 70 %: ${ratio >= 0.7 ? 'met' : 'NOT met'}).`;
}

function experimentsTable(medians: Map<string, Measurement>): string {
  const control = medians.get('x-control');
  const tokenControl = medians.get('x-token-control');
  const baseline = medians.get('baseline');
  const baselinePrepared = medians.get('x-baseline-prepared');
  const pct = (a: number, b: number | undefined): string => (b === undefined ? 'n/a' : `${((100 * a) / b).toFixed(0)} %`);
  const perReq = (v: Measurement): string =>
    `${fmtInt((v.serverCores * 1e6) / v.rps)} + ${v.postgresCores === null ? 'n/a' : fmtInt((v.postgresCores * 1e6) / v.rps)} µs`;
  const lines = [
    '| Experiment | Requests/s (median) | p50 | p99 | vs its control | vs baseline (as is) | vs baseline (prepared) | CPU per request: server + PostgreSQL |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const d of [...MAIN.filter((v) => v.name === 'baseline'), ...EXPERIMENTS]) {
    const m = medians.get(d.name);
    if (m === undefined) continue;
    const ctl = d.request === 'token' ? tokenControl : d.server === 'baseline' ? baseline : control;
    const isConn = d.request === 'connections' && d.server === 'mooring';
    lines.push(
      `| \`${d.name}\`: ${d.label} | ${fmtInt(m.rps)} | ${fmtMs(m.p50Ms)} | ${fmtMs(m.p99Ms)} | ${pct(m.rps, ctl?.rps)} | ${isConn ? pct(m.rps, baseline?.rps) : ''} | ${isConn ? pct(m.rps, baselinePrepared?.rps) : ''} | ${perReq(m)} |`,
    );
  }
  return lines.join('\n');
}

function renderMarkdown(r: {
  machine: Machine;
  counts: SeedCounts;
  seedSeconds: number;
  results: Measurement[];
  medians: Map<string, Measurement>;
  plan: string;
  mooringBytes: number;
  baselineBytes: number;
}): string {
  const m = r.machine;
  const cpuRows = SELECTED.map((d) => r.medians.get(d.name))
    .filter((v): v is Measurement => v !== undefined)
    .map(
      (v) =>
        `| ${v.scenario} | ${v.serverCores.toFixed(2)} | ${v.postgresCores?.toFixed(2) ?? 'n/a'} | ${v.generatorCores.toFixed(2)} | ${v.otherCores?.toFixed(2) ?? 'n/a'} | ${fmtInt((v.serverCores * 1e6) / v.rps)} µs | ${v.postgresCores === null ? 'n/a' : `${fmtInt((v.postgresCores * 1e6) / v.rps)} µs`} |`,
    );
  const allRuns = r.results.map(
    (v) =>
      `| ${v.scenario} | ${v.run} | ${fmtInt(v.rps)} | ${fmtMs(v.p50Ms)} | ${fmtMs(v.p90Ms)} | ${fmtMs(v.p99Ms)} | ${fmtMs(v.maxMs)} | ${v.requests} | ${v.badStatus} | ${v.errors} | ${v.serverCores.toFixed(2)} / ${v.postgresCores?.toFixed(2) ?? 'n/a'} / ${v.otherCores?.toFixed(2) ?? 'n/a'} |`,
  );
  const experiments = SELECTED.some((d) => d.experiment)
    ? `
### What-if experiments (emulated changes to src/)

Each experiment runs Mooring in a fresh process whose database layer is wrapped (bench/variants.ts) to emulate a
candidate change; \`x-control\` is the unchanged Mooring under the same regime. "token look-up cached" serves repeated
look-ups of the same token from memory; "no ownership query" answers the user-belongs-to-client check without a round
trip (as folding it into the connections query would); "prepared" sends every statement as a named prepared statement;
"client cached" serves repeated look-ups of the same OIDC client from memory; "synchronous_commit off" stores new
tokens without waiting for the WAL flush.

${experimentsTable(r.medians)}
`
    : '';
  return `## API endpoints

_Measured ${new Date().toISOString()} (${m.nproc} CPUs, Node ${m.node}, PostgreSQL ${m.postgres}); re-run this section alone with \`BENCH_ONLY=api\`._

### Results

${tableOf(MAIN, r.medians, r.results)}

${ratioLine(r.medians)}

### Method

- **Database:** a fresh database \`${DB_NAME}\` (dropped and recreated each run), migrated by Mooring at start-up, then seeded
  directly with SQL (\`generate_series\`) in ${r.seedSeconds.toFixed(1)} s: ${fmtInt(r.counts.users)} users of the bench client,
  ${fmtInt(r.counts.connections)} connections (one per user, two for every tenth), ${fmtInt(r.counts.accounts)} accounts and
  ${fmtInt(r.counts.syncs)} syncs; the target user has 5 connections (test, api with and without expiry, legacy, valuation) with
  3 accounts and 4 syncs each. \`VACUUM ANALYZE\` afterwards, so the plans are those of a populated database (see below).
- **Servers:** each in its own child process (the load generator does not share their event loop).
  Mooring is built by \`createServer\` as an API process (\`role: 'api'\`: HTTP app and job queue, no sync worker) with
  \`loadConfig({}, { databaseUrl, publicUrl, port, adminToken, sandbox: true, logLevel: 'silent' })\` and a pool of ${POOL}
  connections (Mooring's default). The baseline is a bare Fastify 5 app (no plugins, no hooks, no schemas, no logger) with
  one route calling Mooring's own \`connectionsRepository.listForUser\` (the same SQL) through \`openDb\`, i.e. one
  \`pg.Pool\` of ${POOL} connections.
- **Client:** API client registered over RFC 7591 (\`/oidc/reg\`, admin token), \`client_secret_basic\`, scope \`user:read\`.
  For the connections endpoint, ONE token is obtained up front from \`/oidc/token\` and reused for every request.
  The token scenario posts \`grant_type=client_credentials&scope=user%3Aread\` with HTTP Basic client authentication
  (each request issues and stores a new token, as the official client does before every call).
- **Load:** bench/load.ts, a closed-loop generator on raw keep-alive HTTP/1.1 sockets in the parent process:
  ${CONNECTIONS} connections, one request in flight each; ${WARMUP_MS / 1000} s warm-up (discarded) then ${DURATION_MS / 1000} s measured.
  Latency is from writing the request to reading the complete response. Each scenario is run ${REPEATS} times, interleaved
  (baseline, connections, token, baseline, …); the table quotes the run with the median throughput, and its p50/p99.
- **Caveat:** generator, servers and PostgreSQL share the same ${m.nproc} CPUs; the numbers measure the CPU cost per request
  of the whole stack at saturation. Compare ratios, not absolute values, across machines.
  Before each run the bench waits for other processes to go quiet, and it repeats a run during which processes outside
  the bench used more than ${quiet.disturbedCores} cores (${quiet.disturbedRuns} run(s) repeated this time, all sections), within a shared budget of
  ${MAX_WAIT_MS / 1000} s; the CPU used outside the bench during each kept run is shown below ("other processes").
  PostgreSQL CPU counts the backends of \`${DB_NAME}\` plus the WAL writer, checkpointer and background writer.
  Response sizes: Mooring ${r.mooringBytes} bytes of JSON, baseline ${r.baselineBytes} bytes (raw rows).

### CPU use during the median runs

| Scenario | Server process (cores) | PostgreSQL (cores) | Generator (cores) | Other processes (cores) | Server CPU per request | PostgreSQL CPU per request |
|---|---:|---:|---:|---:|---:|---:|
${cpuRows.join('\n')}
${experiments}
### All runs

| Scenario | Run | Requests/s | p50 | p90 | p99 | max | Requests | Bad status | Socket errors | CPU cores: server / PostgreSQL / other processes |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
${allRuns.join('\n')}

### Query plan of the connections query for the target user

\`\`\`
${r.plan}
\`\`\`
`;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
