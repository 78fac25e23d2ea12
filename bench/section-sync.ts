/**
 * Sections `sync` (sync throughput against the latency limit) and `memory` (a worker's memory over
 * many syncs). Both run real syncs: Mooring's Open Banking adapter calls the sandbox banks over HTTP,
 * served by a Mooring API child whose every bank call waits MOORING_SANDBOX_LATENCY_MS; the syncs are
 * run by worker child processes built by createServer (role 'worker') exactly as `mooring worker`.
 * Connections are seeded with SQL (bench/sync-seed.ts) instead of connect journeys.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { sandboxCatalog } from '../src/providers/catalog.ts';
import { loadSandboxPki } from '../src/sandbox/pki.ts';
import { SCHEDULER_TICK_MS, PER_PROVIDER_CONCURRENCY } from '../src/syncs/worker.ts';
import { SCHEDULER_BATCH } from '../src/syncs/scheduler.ts';
import type pg from 'pg';
import {
  BENCH_DIR, cpuMeter, environmentLine, envNum, fmtInt, fmtMiB, fmtMs, fmtNum, freePort, freshDatabase, log, median, percentile, quiet, sleep, startChild, waitForQuiet, withClient,
  type Child, type CpuReading,
} from './common.ts';
import type { MemorySample } from './ipc.ts';
import { BENCH_DATA_DIR } from './common.ts';
import { armConnections, resetSyncState, seedObConnections } from './sync-seed.ts';

export const SYNC_DB = 'mooring_bench_sync';
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
const POOL = 10;

const LATENCY_MS = envNum('BENCH_SYNC_LATENCY_MS', 200);
const WORKERS = envNum('BENCH_SYNC_WORKERS', 2);
const PER_WORKER = envNum('BENCH_SYNC_CONCURRENCY', 10);
const WINDOW_S = envNum('BENCH_SYNC_WINDOW_S', 15);
const WARMUP_S = envNum('BENCH_SYNC_WARMUP_S', 8);
const REPEATS = envNum('BENCH_REPEATS', 3);
const SINGLE_SAMPLES = envNum('BENCH_SYNC_SINGLE_SAMPLES', 15);
/** BENCH_PROFILE=1: CPU-profile the API (banks) process and the first worker during each measured window. */
const PROFILE = process.env.BENCH_PROFILE === '1';
const PROFILE_DIR = path.join(BENCH_DIR, 'profiles');

const MEMORY_SYNCS = envNum('BENCH_MEMORY_SYNCS', 100_000);
const MEMORY_MAX_S = envNum('BENCH_MEMORY_MAX_S', 150);
const MEMORY_CONCURRENCY = envNum('BENCH_MEMORY_CONCURRENCY', 50);
const MEMORY_SAMPLE_S = envNum('BENCH_MEMORY_SAMPLE_S', 10);
/** Connections made due at a time in the memory run. */
const ARM_CHUNK = 2000;

/** The five Open Banking providers of the sandbox catalog; connections are spread over them round robin. */
const OB_PROVIDERS = sandboxCatalog('http://unused').filter((e) => e.adapter === 'openbanking');

// ---------------------------------------------------------------------------------------------
// The lab: one database, an API child (sandbox banks) per bank latency, an engine child for each

interface Lab {
  url: string;
  apis: Map<number, Child>;
  engines: Map<number, Child>;
  seeded: number;
  batches: number;
}

let lab: Lab | null = null;

async function openLab(): Promise<Lab> {
  if (lab !== null) return lab;
  log(`(re)creating database ${SYNC_DB}`);
  lab = { url: await freshDatabase(SYNC_DB), apis: new Map(), engines: new Map(), seeded: 0, batches: 0 };
  return lab;
}

/** The API child serving the sandbox banks with this latency (it migrates the database on first start). */
async function apiFor(l: Lab, latencyMs: number): Promise<Child> {
  const have = l.apis.get(latencyMs);
  if (have !== undefined) return have;
  const port = await freePort();
  const mtlsPort = await freePort();
  log(`starting a Mooring API process serving the sandbox banks with ${latencyMs} ms per bank call (child process; mutual TLS on port ${mtlsPort})`);
  const api = await startChild(`Mooring API (banks ${latencyMs} ms)`, 'mooring-server.ts', [l.url, String(port), ADMIN_TOKEN, String(POOL), '', String(latencyMs), String(mtlsPort)], port);
  l.apis.set(latencyMs, api);
  mtlsPorts.set(api, mtlsPort);
  return api;
}

/** Each API child's mutual-TLS port (its banks' token, consent and resource endpoints). */
const mtlsPorts = new Map<Child, number>();
const bankUrl = (api: Child): string => `http://127.0.0.1:${api.port}`;
/** The worker-process.ts arguments after the mode: database, the API (banks) to call, concurrency, pool, its mTLS port. */
const workerArgs = (l: Lab, api: Child, concurrency: number | string): string[] =>
  [l.url, bankUrl(api), String(concurrency), String(POOL), String(mtlsPorts.get(api) ?? '')];

/** A Mooring process without worker loops, for driving the engine (single syncs, scheduler ticks), with banks at this latency. */
async function engineFor(l: Lab, latencyMs: number): Promise<Child> {
  const have = l.engines.get(latencyMs);
  if (have !== undefined) return have;
  const api = await apiFor(l, latencyMs);
  const engine = await startChild(`Mooring engine (banks ${latencyMs} ms)`, 'worker-process.ts', ['engine', ...workerArgs(l, api, 1)], 0);
  l.engines.set(latencyMs, engine);
  return engine;
}

async function ensureSeeded(l: Lab, n: number): Promise<void> {
  if (l.seeded >= n) return;
  const add = n - l.seeded;
  await apiFor(l, LATENCY_MS); // migrated
  const t = performance.now();
  l.batches += 1;
  await withClient(l.url, (c) => seedObConnections(c, { providerIds: OB_PROVIDERS.map((p) => p.id), count: add, prefix: `s${l.batches}-` }));
  await withClient(l.url, (c) => c.query('vacuum analyze'));
  l.seeded = n;
  log(`  seeded ${fmtInt(add)} Open Banking connections (user_ok, consent + tokens at the bank) with SQL in ${((performance.now() - t) / 1000).toFixed(1)} s; ${fmtInt(n)} in all`);
}

export async function closeSyncLab(): Promise<void> {
  if (lab === null) return;
  for (const c of [...lab.engines.values(), ...lab.apis.values()]) await c.stop().catch(() => undefined);
  lab = null;
}

interface Counts {
  done: number;
  failed: number;
  queued: number;
  running: number;
}

async function counts(c: pg.Client): Promise<Counts> {
  const r = await c.query<{ done: string; failed: string; queued: string; running: string }>(
    `select count(*) filter (where state = 'done') as done, count(*) filter (where state = 'done' and fetch_status <> 'success') as failed,
            count(*) filter (where state = 'queued') as queued, count(*) filter (where state = 'running') as running from syncs`,
  );
  const row = r.rows[0];
  return { done: Number(row?.done ?? 0), failed: Number(row?.failed ?? 0), queued: Number(row?.queued ?? 0), running: Number(row?.running ?? 0) };
}

/** Queues every due connection for the workers, as the worker's scheduler tick does (engine.enqueueDue into the syncs table). */
async function prequeue(engine: Child): Promise<{ queued: number; ms: number }> {
  let queued = 0;
  const t = performance.now();
  for (;;) {
    const r = await engine.call<{ queued: number; ms: number }>('tick', { queue: true });
    queued += r.queued;
    if (r.queued < SCHEDULER_BATCH) return { queued, ms: performance.now() - t };
  }
}

// ---------------------------------------------------------------------------------------------
// Single-sync latency

interface SingleSync {
  latencyMs: number;
  samples: number[];
  median: number;
  bankCallsPerSync: number;
  /** How long the bank took to answer each call (latency included), median. */
  bankMedianMs: number;
}

async function singleSyncLatency(l: Lab, latencyMs: number): Promise<SingleSync> {
  const api = await apiFor(l, latencyMs);
  const engine = await engineFor(l, latencyMs);
  await ensureSeeded(l, SINGLE_SAMPLES + 1);
  const ids = await withClient(l.url, async (c) => {
    await resetSyncState(c);
    return (await c.query<{ id: string }>('select id from connections order by id limit $1', [SINGLE_SAMPLES + 1])).rows.map((r) => r.id);
  });
  await waitForQuiet();
  const calls0 = await api.call<number>('bankCalls');
  await api.call('bankTimesReset');
  const samples: number[] = [];
  for (const [i, id] of ids.entries()) {
    const r = await engine.call<{ ms: number; fetchStatus: string | null; errorDetail: string | null }>('syncOne', { connectionId: id });
    if (r.fetchStatus !== 'success') throw new Error(`single sync of ${id} ended ${r.fetchStatus}: ${r.errorDetail ?? ''}`);
    if (i > 0) samples.push(r.ms); // the first warms the process up
  }
  const calls = (await api.call<number>('bankCalls')) - calls0;
  const bankMedianMs = median(await api.call<number[]>('bankTimes'));
  const out = { latencyMs, samples, median: median(samples), bankCallsPerSync: calls / ids.length, bankMedianMs };
  log(`  one sync at a time, banks ${latencyMs} ms: median ${fmtMs(out.median)} (${samples.map((s) => s.toFixed(0)).join(', ')} ms); ${fmtNum(out.bankCallsPerSync)} bank calls per sync, each answered in ${fmtMs(bankMedianMs)} (median)`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Throughput runs

interface WorkerSpec {
  name: string;
  label: string;
  workers: number;
  perWorker: number;
  warmupS?: number;
  windowS?: number;
  /** False: the workers run with MOORING_PROVIDER_CALL_LOG=off (the call log's baseline). */
  callLog?: boolean;
}

interface ThroughputRun {
  spec: WorkerSpec;
  run: number;
  concurrency: number;
  rate: number;
  syncs: number;
  failed: number;
  seconds: number;
  backlogAtEnd: number;
  prequeueMs: number;
  cpu: CpuReading;
  /** Cores of the API (bank) process and of all worker processes. */
  apiCores: number;
  workerCores: number;
  /** How long the workers' job handlers (one sync each) ran, for jobs finished in the window: median, p90. */
  handlerMedianMs: number;
  handlerP90Ms: number;
  /** Share of the window the C slots spent inside a job handler. */
  busy: number;
  /** How long the banks took to answer each call during the window (latency included): median, p90. */
  bankMedianMs: number;
  bankP90Ms: number;
  /** Claims (attempts) per sync claimed so far in the run: 1 unless a sync was taken twice. */
  claimsPerSync: number;
}

/** Syncs claimed at least once, and claims in all (sum of attempts): a sync claimed twice counts two. */
async function claimCounts(c: pg.Client): Promise<{ syncs: number; claims: number }> {
  const r = await c.query<{ syncs: string; claims: string | null }>('select count(*) as syncs, sum(attempts) as claims from syncs where attempts > 0');
  return { syncs: Number(r.rows[0]?.syncs ?? 0), claims: Number(r.rows[0]?.claims ?? 0) };
}

async function throughputOnce(l: Lab, spec: WorkerSpec, run: number, perSyncMs: number): Promise<ThroughputRun> {
  const api = await apiFor(l, LATENCY_MS);
  const engine = await engineFor(l, LATENCY_MS);
  const concurrency = spec.workers * spec.perWorker;
  const warmupS = spec.warmupS ?? WARMUP_S;
  const windowS = spec.windowS ?? WINDOW_S;
  const need = Math.ceil((concurrency / (perSyncMs / 1000)) * (warmupS + windowS + 5) * 1.25) + concurrency;
  await ensureSeeded(l, need);
  const c = await withClient(l.url, async (db) => {
    await resetSyncState(db);
    return armConnections(db, need);
  });
  const pre = await prequeue(engine);
  if (pre.queued !== c) throw new Error(`armed ${c} connections but the scheduler queued ${pre.queued}`);
  await waitForQuiet();
  const workers = await Promise.all(
    Array.from({ length: spec.workers }, (_, i) =>
      startChild(`worker ${i + 1}`, 'worker-process.ts', ['worker', ...workerArgs(l, api, spec.perWorker)], 0, {
        env: { BENCH_TIME_JOBS: '1', MOORING_PROVIDER_CALL_LOG: spec.callLog === false ? 'off' : 'on' },
      }),
    ),
  );
  try {
    const started = performance.now();
    return await withClient(l.url, async (db) => {
      while (performance.now() - started < warmupS * 1000) await sleep(250);
      await Promise.all([...workers.map((w) => w.call('jobsReset')), api.call('bankTimesReset')]);
      const profiled = PROFILE ? [api, ...workers.slice(0, 1)] : [];
      for (const p of profiled) await p.ask({ type: 'profile-start' });
      const meter = cpuMeter(SYNC_DB, () => [api.proc.pid, ...workers.map((w) => w.proc.pid)]);
      const c0 = await counts(db);
      const t0 = performance.now();
      for (let s = 1; s <= windowS; s += 1) {
        await sleep(t0 + s * 1000 - performance.now());
        if (s % 5 === 0 || s === windowS) {
          const last = await counts(db);
          log(`    ${s} s: ${fmtInt(last.done - c0.done)} syncs done in the window (${last.running} running, ${fmtInt(last.queued)} queued)`);
        }
      }
      const c1 = await counts(db);
      const seconds = (performance.now() - t0) / 1000;
      const cpu = meter();
      if (profiled.length > 0) fs.mkdirSync(PROFILE_DIR, { recursive: true });
      for (const [i, p] of profiled.entries()) {
        const file = path.join(PROFILE_DIR, `sync-${spec.name}-run${run}-${i === 0 ? 'api' : 'worker1'}.cpuprofile`);
        await p.ask({ type: 'profile-stop', file });
        log(`    CPU profile of ${p.name} written to ${path.relative(path.resolve(BENCH_DIR, '..'), file)}`);
      }
      const handlers = (await Promise.all(workers.map((w) => w.call<number[]>('jobs')))).flat().sort((a, b) => a - b);
      const bank = (await api.call<number[]>('bankTimes')).sort((a, b) => a - b);
      const syncs = c1.done - c0.done;
      const claimed = await claimCounts(db);
      return {
        claimsPerSync: claimed.claims / Math.max(1, claimed.syncs),
        spec, run, concurrency, rate: syncs / seconds, syncs, failed: c1.failed, seconds, backlogAtEnd: c1.queued, prequeueMs: pre.ms, cpu,
        apiCores: cpu.perChild[0] ?? 0,
        workerCores: cpu.perChild.slice(1).reduce((a, b) => a + b, 0),
        handlerMedianMs: percentile(handlers, 50),
        handlerP90Ms: percentile(handlers, 90),
        busy: handlers.reduce((a, b) => a + b, 0) / (seconds * 1000 * concurrency),
        bankMedianMs: percentile(bank, 50),
        bankP90Ms: percentile(bank, 90),
      };
    });
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

async function throughput(l: Lab, spec: WorkerSpec, run: number, perSyncMs: number): Promise<ThroughputRun> {
  const C = spec.workers * spec.perWorker;
  log(`  ${spec.label}: ${spec.workers} worker process(es) × concurrency ${spec.perWorker} = ${C}; run ${run}`);
  for (;;) {
    const r = await throughputOnce(l, spec, run, perSyncMs);
    const limit = C / (perSyncMs / 1000);
    log(
      `  → ${fmtNum(r.rate)} syncs/s (limit ${fmtNum(limit)}: ${((100 * r.rate) / limit).toFixed(0)} %); ${r.failed} failed; backlog at end ${fmtInt(r.backlogAtEnd)};` +
        ` a sync in the worker took ${fmtMs(r.handlerMedianMs)} (median; p90 ${fmtMs(r.handlerP90Ms)}), slots busy ${(100 * r.busy).toFixed(0)} % of the time;` +
        ` a bank call took ${fmtMs(r.bankMedianMs)} (median; p90 ${fmtMs(r.bankP90Ms)});` +
        ` CPU cores: API+banks ${r.apiCores.toFixed(2)}, workers ${r.workerCores.toFixed(2)}, PostgreSQL ${r.cpu.postgres?.toFixed(2) ?? 'n/a'}, other processes ${r.cpu.other?.toFixed(2) ?? 'n/a'}`,
    );
    const cost = ((spec.warmupS ?? WARMUP_S) + (spec.windowS ?? WINDOW_S) + 10) * 1000;
    if (PROFILE || r.cpu.other === null || r.cpu.other <= quiet.disturbedCores || quiet.budgetMs < cost) return r;
    quiet.budgetMs -= cost;
    quiet.disturbedRuns += 1;
    log(`  run disturbed (${r.cpu.other.toFixed(2)} cores used outside the bench); repeating it`);
  }
}

// ---------------------------------------------------------------------------------------------
// Section: sync throughput

export interface SectionResult {
  markdown: string;
  summary: string;
}

interface FapiCosts {
  keepAliveMs: number;
  freshMs: number;
  signMs: number;
  samples: number;
}

/**
 * What the FAPI path adds to a bank call, measured against the banks at 0 ms: one resource call
 * over a kept-alive mutual-TLS connection (how the adapter's agent calls) beside the same call on a
 * new connection (a full TLS handshake with the client certificate), and signing one PS256 client
 * assertion (private_key_jwt; made only when a token is fetched).
 */
async function fapiCosts(l: Lab): Promise<FapiCosts> {
  const api = await apiFor(l, 0);
  const port = mtlsPorts.get(api);
  if (port === undefined) throw new Error('the 0 ms API has no mutual-TLS port');
  const pki = loadSandboxPki(BENCH_DATA_DIR, []);
  const consent = await withClient(l.url, async (c) => (await c.query<{ id: string; provider_id: string }>("select id, provider_id from sandbox_consents where status = 'Authorised' order by id limit 1")).rows[0]);
  const slug = sandboxCatalog('http://unused').find((e) => e.id === consent?.provider_id)?.bankRef;
  if (consent === undefined || slug === undefined) throw new Error('no seeded consent to call the bank with');
  const url = `https://127.0.0.1:${port}/sandbox/ob/${slug}/open-banking/v3.1/aisp/accounts`;
  const token = `at-${consent.id.replace(/^aac-/, '')}`;
  const tls = { cert: pki.clientCert, key: pki.clientKey, ca: pki.caCert };
  const call = async (agent: Agent): Promise<number> => {
    const t = performance.now();
    const res = await undiciFetch(url, { dispatcher: agent, headers: { authorization: `Bearer ${token}`, 'x-fapi-interaction-id': randomUUID() } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`the bank answered ${res.status} to the cost probe`);
    return performance.now() - t;
  };
  const samples = 100;
  const kept = new Agent({ connect: tls });
  const keepAlive: number[] = [];
  await call(kept);
  for (let i = 0; i < samples; i += 1) keepAlive.push(await call(kept));
  await kept.close();
  const fresh: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    const agent = new Agent({ connect: tls });
    fresh.push(await call(agent));
    await agent.close();
  }
  const key = createPrivateKey(pki.signingKey);
  const sign: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    const t = performance.now();
    await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'PS256', kid: pki.signingKeyId })
      .setIssuer('mooring').setSubject('mooring').setAudience(url).setIssuedAt().setExpirationTime('1m').sign(key);
    sign.push(performance.now() - t);
  }
  const out = { keepAliveMs: median(keepAlive), freshMs: median(fresh), signMs: median(sign), samples };
  log(`  FAPI costs: a bank call on a kept-alive mTLS connection ${fmtMs(out.keepAliveMs)}, on a new one (handshake) ${fmtMs(out.freshMs)}; a PS256 signature ${fmtMs(out.signMs)} (medians of ${samples})`);
  return out;
}

export async function runSyncSection(): Promise<SectionResult> {
  const l = await openLab();
  await apiFor(l, LATENCY_MS);
  await apiFor(l, 0);

  log(`sync throughput: per-sync latency, one sync at a time (engine.sync in a Mooring process; ${SINGLE_SAMPLES} syncs after one warm-up)`);
  const single = await singleSyncLatency(l, LATENCY_MS);
  const single0 = await singleSyncLatency(l, 0);
  const L1 = single.median;
  const rounds = (single.median - single0.median) / LATENCY_MS;

  const main: WorkerSpec = { name: 'workers', label: 'Mooring workers as deployed', workers: WORKERS, perWorker: PER_WORKER };
  const one: WorkerSpec = { name: 'c1', label: 'One worker, concurrency 1', workers: 1, perWorker: 1, warmupS: 4, windowS: 15 };
  const noLog: WorkerSpec = { ...main, name: 'workers-nolog', label: 'The same, provider call log off (MOORING_PROVIDER_CALL_LOG=off)', callLog: false };

  log(`sync throughput: workers with a known concurrency; ${WARMUP_S} s warm-up, then ${WINDOW_S} s measured; all syncs queued before the workers start`);
  const runs: ThroughputRun[] = [];
  runs.push(await throughput(l, one, 1, L1));
  // Interleaved, so that a change in the machine's load falls on both alike: the call log's overhead is their difference.
  for (let run = 1; run <= REPEATS; run += 1) {
    runs.push(await throughput(l, main, run, L1));
    runs.push(await throughput(l, noLog, run, L1));
  }
  log('sync throughput: what mutual TLS and signed requests cost');
  const costs = await fapiCosts(l);

  const pick = (name: string): ThroughputRun[] => runs.filter((r) => r.spec.name === name);
  const medianRun = (rs: ThroughputRun[]): ThroughputRun => {
    const s = [...rs].sort((a, b) => a.rate - b.rate);
    const m = s[Math.floor((s.length - 1) / 2)];
    if (m === undefined) throw new Error('no runs');
    return m;
  };
  const mainMedian = medianRun(pick('workers'));
  const limitOf = (r: ThroughputRun): number => r.concurrency / (L1 / 1000);
  const idealOf = (r: ThroughputRun): number => r.concurrency / ((2 * LATENCY_MS) / 1000);
  const ratio = mainMedian.rate / limitOf(mainMedian);

  const row = (r: ThroughputRun, all: ThroughputRun[]): string => {
    const perSyncCpu = ((r.apiCores + r.workerCores + (r.cpu.postgres ?? 0)) * 1000) / r.rate;
    const perSyncWorker = (r.workerCores * 1000) / r.rate;
    return (
      `| ${r.spec.label} | ${r.spec.workers} × ${r.spec.perWorker} = **${r.concurrency}** | **${fmtNum(r.rate)}**${all.length > 1 ? ` (${all.map((x) => fmtNum(x.rate)).join(' / ')})` : ''} |` +
      ` ${fmtNum(limitOf(r))} | **${((100 * r.rate) / limitOf(r)).toFixed(0)} %** | ${((100 * r.rate) / idealOf(r)).toFixed(0)} % |` +
      ` ${fmtMs(r.handlerMedianMs)} | ${fmtNum(r.concurrency / r.rate, 2)} s | ${(100 * r.busy).toFixed(0)} % | ${fmtMs(r.bankMedianMs)} |` +
      ` ${all.reduce((a, x) => a + x.failed, 0)} | ${r.apiCores.toFixed(2)} / ${r.workerCores.toFixed(2)} / ${r.cpu.postgres?.toFixed(2) ?? 'n/a'} / ${r.cpu.other?.toFixed(2) ?? 'n/a'} | ${fmtNum(perSyncWorker)} / ${fmtNum(perSyncCpu)} ms |`
    );
  };
  const noLogMedian = medianRun(pick('workers-nolog'));
  const rows = [row(medianRun(pick('c1')), pick('c1')), row(mainMedian, pick('workers')), row(noLogMedian, pick('workers-nolog'))];
  const logOverhead = 1 - mainMedian.rate / noLogMedian.rate;
  const claimsPerSync = Math.max(...runs.map((r) => r.claimsPerSync));

  const c1 = medianRun(pick('c1'));
  const cycle = mainMedian.concurrency / mainMedian.rate;
  const pollBound = L1 < 900 && cycle > 0.9 && cycle < 1.25;
  const verdict = ratio >= 0.9 ? 'met' : 'NOT met';
  const summary =
    `Sync throughput: ${fmtNum(mainMedian.rate)} syncs/s at C = ${mainMedian.concurrency} (limit C ÷ L₁ = ${fmtNum(limitOf(mainMedian))}/s with L₁ = ${fmtMs(L1)}): ` +
    `${(ratio * 100).toFixed(0)} % (target ≥ 90 %: ${verdict}); call log overhead ${(100 * logOverhead).toFixed(1)} % (log off: ${fmtNum(noLogMedian.rate)}/s); bank calls per sync ${fmtNum(single.bankCallsPerSync, 0)}, sequential ${fmtNum(rounds)}; claims per sync (worst run) ${fmtNum(claimsPerSync, 3)}`;

  const markdown = `## Sync throughput

_Measured ${new Date().toISOString()} on ${await environmentLine()}; re-run this section alone with \`BENCH_ONLY=sync\`._

Every sandbox bank call waits **${LATENCY_MS} ms** (\`MOORING_SANDBOX_LATENCY_MS\`). Each Open Banking sync makes
**${fmtNum(single.bankCallsPerSync, 0)} bank calls**, of which **${fmtNum(rounds)} are sequential**: the accounts list, then the balances and the
transactions of both accounts in parallel (the adapter's \`ACCOUNT_CONCURRENCY\` is 4; no token refresh is needed).
So one sync cannot take less than 2 × ${LATENCY_MS} ms = ${2 * LATENCY_MS} ms.

| | One sync at a time (median of ${SINGLE_SAMPLES}) |
|---|---:|
| Banks at ${LATENCY_MS} ms: per-sync latency **L₁** | **${fmtMs(single.median)}** |
| Banks at 0 ms: Mooring's own time per sync | ${fmtMs(single0.median)} |
| Sequential bank calls = (L₁ − L₀) ÷ ${LATENCY_MS} ms | ${fmtNum(rounds, 2)} |
| A bank call answered in (median; ${LATENCY_MS} ms of latency + the sandbox bank's own work) | ${fmtMs(single.bankMedianMs)} |

| Workers | Processes × concurrency = C | Syncs/s (median${pick('workers').length > 1 ? ` of ${pick('workers').length}; each run` : ''}) | Limit C ÷ L₁ (syncs/s) | Achieved ÷ limit | Achieved ÷ (C ÷ ${2 * LATENCY_MS} ms) | Sync in the worker (median job) | Slot time per sync (C ÷ syncs/s) | Slots busy | Bank call answered in (median, latency included) | Failed syncs | CPU cores: API+banks / workers / PostgreSQL / other | CPU per sync: workers / all (banks and PostgreSQL included) |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|
${rows.join('\n')}

**Achieved ÷ limit for the deployed worker: ${(ratio * 100).toFixed(0)} %** (target ≥ 90 %: ${verdict}). Claims per sync
(sum of \`attempts\` ÷ syncs claimed, worst run): **${fmtNum(claimsPerSync, 3)}**.

**Provider call log overhead: ${(100 * logOverhead).toFixed(1)} %** of sync throughput (deployed workers with the log, the default,
against the same with \`MOORING_PROVIDER_CALL_LOG=off\`, runs interleaved; target < 5 %: ${logOverhead < 0.05 ? 'met' : 'NOT met'}).
Each sync records its ${fmtNum(single.bankCallsPerSync, 0)} bank calls (and the token calls when there are any); rows are buffered in the worker and written
in batches (one multi-row insert and one rollup upsert per second or per 1,000 rows), never on the sync's transaction.

**Where the time goes** (deployed workers, median run): the C slots were inside a sync **${(100 * mainMedian.busy).toFixed(0)} %** of the
window, each slot spending ${fmtNum(cycle, 2)} s per sync (C ÷ syncs/s; at concurrency 1: ${fmtNum(1 / c1.rate, 2)} s); a sync took **${fmtMs(mainMedian.handlerMedianMs)}** in the worker (median job)
against L₁ = ${fmtMs(L1)} alone, and a bank call was answered in ${fmtMs(mainMedian.bankMedianMs)} against ${fmtMs(single.bankMedianMs)} alone.
${
  mainMedian.busy < 0.9
    ? `**The slots idle ${(100 * (1 - mainMedian.busy)).toFixed(0)} % of the time with syncs queued:** pick-up (the claim), not the syncs, limits throughput.${
        pollBound ? ' Each slot runs about one sync per claim poll interval (`claimPollMs`): a finished sync should wake the claim loop at once.' : ''
      }`
    : `The slots are kept busy (pick-up costs ${(100 * (1 - mainMedian.busy)).toFixed(0)} %); the throughput lost against C ÷ L₁ is the sync itself taking
longer under load: ${fmtMs(mainMedian.handlerMedianMs - L1)} more per sync. The banks answer later — median ${fmtMs(mainMedian.bankMedianMs)}, p90 ${fmtMs(mainMedian.bankP90Ms)}
against ${fmtMs(single.bankMedianMs)} alone, and the second round waits for the slowest of its 4 parallel calls — because the sandbox banks
are served by one Mooring process on the same CPUs (it used ${mainMedian.apiCores.toFixed(2)} cores); the rest is Mooring's own work in the
worker and PostgreSQL under contention.`
}
During the window the whole machine used ${mainMedian.cpu.machine === null ? 'n/a' : fmtNum(mainMedian.cpu.machine, 2)} of its ${os.availableParallelism()} CPUs.

**What the FAPI path costs per sync.** Every bank call of a sync is mutual TLS to the bank's own listener, with the
x-fapi-* headers and a certificate-bound token the bank checks (the seeded tokens are bound to the sandbox client certificate).
Measured in the same run against the banks at 0 ms (medians of ${costs.samples}, one call at a time from the bench process):

| | Median |
|---|---:|
| A bank call (accounts list) on a kept-alive mutual-TLS connection | ${fmtMs(costs.keepAliveMs)} |
| The same call on a new connection (TLS handshake with the client certificate) | ${fmtMs(costs.freshMs)} |
| Handshake cost (difference) | ${fmtMs(costs.freshMs - costs.keepAliveMs)} |
| Signing one PS256 client assertion or request object | ${fmtMs(costs.signMs)} |

A sync makes its ${fmtNum(single.bankCallsPerSync, 0)} calls on the adapter's kept-alive connections (one undici agent per provider and process), so in steady state
it pays no handshake: at most one per connection the agent opens. It signs nothing: private_key_jwt assertions are made only
when a token is fetched (client-credentials tokens are reused until shortly before they expire; a refresh only when the access token
has), and request objects only when a journey starts. Mooring's own time per sync with all of this is L₀ = ${fmtMs(single0.median)}
(one sync at a time, banks at 0 ms), which the throughput above already includes.

Method:
- **Setup:** database \`${SYNC_DB}\`, migrated by Mooring; connections seeded with SQL (bench/sync-seed.ts), spread over the
  ${OB_PROVIDERS.length} sandbox Open Banking providers: user, an \`Authorised\` consent at the sandbox bank (username \`user_ok\`),
  an access token (valid for 3 days, so no refresh) and a refresh token, and the connection holding the grant; no connect journeys.
  Between runs every sync, account, transaction and event is deleted, so each run does the same work (2 accounts upserted,
  the last 7 days of transactions inserted, \`syncCompleted\` and \`newTransactions\` events logged).
- **Banks:** a Mooring API process (\`createServer\`, role \`api\`, pool ${POOL}) serves the sandbox banks with a ${LATENCY_MS} ms latency per call.
- **L₁:** \`engine.sync()\` of one connection at a time in a Mooring process (queue, claim, bank calls, store, events), wall time.
- **Workers:** child processes built by \`createServer\` with role \`worker\` (what \`mooring worker\` runs), \`MOORING_WORKER_CONCURRENCY\`
  = ${PER_WORKER}, pool ${POOL}. Before they start, the armed connections (enough for the run) are queued by \`engine.enqueueDue()\` into
  the syncs table, the one queue — exactly the scheduler tick — so the queue never runs dry. Each worker claims as many due syncs as
  it has free slots in one statement (\`for update skip locked\`), again as soon as a sync finishes. After ${WARMUP_S} s, syncs finished (state \`done\`)
  are counted over ${WINDOW_S} s. The deployed configuration runs ${REPEATS} times; the table quotes the median.
  Per-provider limit: ${PER_PROVIDER_CONCURRENCY} (not reached).
- **Timings inside the processes** (bench instrumentation only): each run of a claimed sync in the workers is timed
  (BENCH_TIME_JOBS, bench/worker-process.ts), and the API process records how long each bank call took to answer
  (Fastify's \`reply.elapsedTime\`, the ${LATENCY_MS} ms included).
- **CPU:** cores used during the window by the API process (it serves the banks), the worker processes, PostgreSQL
  (backends of \`${SYNC_DB}\`, WAL writer, checkpointer, background writer) and everything else on the machine ("other").
`;
  return { markdown, summary };
}

// ---------------------------------------------------------------------------------------------
// Section: worker memory

interface MemoryPoint {
  seconds: number;
  syncs: number;
  mem: MemorySample;
}

/** Least-squares slope of y over x, with its standard error. */
function fit(xs: number[], ys: number[]): { slope: number; se: number } {
  const n = xs.length;
  if (n < 3) return { slope: Number.NaN, se: Number.NaN };
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i += 1) {
    num += ((xs[i] ?? 0) - mx) * ((ys[i] ?? 0) - my);
    den += ((xs[i] ?? 0) - mx) ** 2;
  }
  if (den === 0) return { slope: Number.NaN, se: Number.NaN };
  const slope = num / den;
  const intercept = my - slope * mx;
  let sse = 0;
  for (let i = 0; i < n; i += 1) sse += ((ys[i] ?? 0) - (intercept + slope * (xs[i] ?? 0))) ** 2;
  return { slope, se: Math.sqrt(sse / (n - 2) / den) };
}

export async function runMemorySection(): Promise<SectionResult> {
  const l = await openLab();
  const api = await apiFor(l, 0);
  await ensureSeeded(l, MEMORY_SYNCS);
  await withClient(l.url, (c) => resetSyncState(c));
  await waitForQuiet();
  log(`worker memory: one worker process (concurrency ${MEMORY_CONCURRENCY}, --expose-gc), banks without latency; target ${fmtInt(MEMORY_SYNCS)} syncs or ${MEMORY_MAX_S} s`);
  const worker = await startChild('worker (memory)', 'worker-process.ts', ['worker', ...workerArgs(l, api, MEMORY_CONCURRENCY)], 0, { execArgv: ['--expose-gc'] });
  const points: MemoryPoint[] = [];
  let reachedTarget = false;
  let failed = 0;
  let elapsed = 0;
  let extraClaims = 0;
  let maxBacklog = 0;
  let cpu: CpuReading | null = null;
  try {
    await withClient(l.url, async (db) => {
      const t0 = performance.now();
      const meter = cpuMeter(SYNC_DB, () => [api.proc.pid, worker.proc.pid]);
      const sample = async (): Promise<void> => {
        const c = await counts(db);
        failed = c.failed;
        const mem = await worker.memory();
        points.push({ seconds: (performance.now() - t0) / 1000, syncs: c.done, mem });
        log(`    ${fmtInt(c.done).padStart(7)} syncs: RSS ${fmtMiB(mem.rss)}, heap used ${fmtMiB(mem.heapUsed)} (after GC), heap total ${fmtMiB(mem.heapTotal)}, external ${fmtMiB(mem.external)}; ${fmtInt(c.queued)} queued`);
      };
      await sample();
      // Connections are made due a chunk at a time, keeping the worker's backlog (due or queued) under
      // ARM_CHUNK: a steady state, not a growing backlog (the backlog section measures that).
      let armed = 0;
      const topUp = async (): Promise<void> => {
        const r = await db.query<{ backlog: string }>(
          `select (select count(*) from syncs where state <> 'done') + (select count(*) from connections where next_sync_at <= now()) as backlog`,
        );
        const backlog = Number(r.rows[0]?.backlog ?? 0);
        maxBacklog = Math.max(maxBacklog, backlog);
        if (backlog < ARM_CHUNK / 2 && armed < MEMORY_SYNCS) armed += await armConnections(db, Math.min(ARM_CHUNK, MEMORY_SYNCS - armed));
      };
      let nextSample = performance.now() + MEMORY_SAMPLE_S * 1000;
      for (;;) {
        await topUp();
        await sleep(1000);
        if (performance.now() < nextSample) continue;
        nextSample += MEMORY_SAMPLE_S * 1000;
        await sample();
        const last = points[points.length - 1];
        elapsed = (performance.now() - t0) / 1000;
        if (last !== undefined && last.syncs >= MEMORY_SYNCS) {
          reachedTarget = true;
          break;
        }
        if (elapsed >= MEMORY_MAX_S) break;
      }
      cpu = meter();
      const claimed = await claimCounts(db);
      extraClaims = claimed.claims - claimed.syncs;
    });
  } finally {
    await worker.stop();
  }

  const last = points[points.length - 1];
  if (last === undefined) throw new Error('no memory samples');
  const c = cpu as CpuReading | null;
  const cpuNote =
    c === null
      ? 'CPU not measured'
      : `cores used: sandbox banks (a Mooring API process) ${(c.perChild[0] ?? 0).toFixed(2)}, the worker ${(c.perChild[1] ?? 0).toFixed(2)}, PostgreSQL ${c.postgres?.toFixed(2) ?? 'n/a'}, other processes ${c.other?.toFixed(2) ?? 'n/a'}`;
  // Fit over the samples after the first third of the syncs (start-up, JIT, pools and caches warming up).
  const steady = points.filter((p) => p.syncs >= last.syncs / 3);
  const heapFit = fit(steady.map((p) => p.syncs), steady.map((p) => p.mem.heapUsed));
  const rssFit = fit(steady.map((p) => p.syncs), steady.map((p) => p.mem.rss));
  const rate = last.syncs / last.seconds;
  const MiB = 1024 ** 2;
  const perTenK = (f: { slope: number; se: number }): string =>
    Number.isNaN(f.slope) ? 'n/a' : `${f.slope >= 0 ? '+' : '−'}${fmtNum(Math.abs(f.slope * 10_000) / MiB, 2)} ± ${fmtNum((2 * f.se * 10_000) / MiB, 2)} MiB`;
  /** Growth is told apart from noise only when the slope exceeds two standard errors. */
  const grows = (f: { slope: number; se: number }): boolean => !Number.isNaN(f.slope) && f.slope - 2 * f.se > 0;
  /** At 100,000 syncs if the upper end of the trend held (a falling trend is not projected downwards). */
  const upTo = (v: number, f: { slope: number; se: number }): number => v + Math.max(0, Number.isNaN(f.slope) ? 0 : f.slope + 2 * f.se) * Math.max(0, 100_000 - last.syncs);
  const heapRange = `${fmtMiB(Math.min(...steady.map((p) => p.mem.heapUsed)))}–${fmtMiB(Math.max(...steady.map((p) => p.mem.heapUsed)))}`;
  const rssRange = `${fmtMiB(Math.min(...steady.map((p) => p.mem.rss)))}–${fmtMiB(Math.max(...steady.map((p) => p.mem.rss)))}`;
  const first = steady[0] ?? last;
  const verdict = grows(heapFit)
    ? `**The heap grows** (after GC, by more than twice the trend's standard error): objects are retained from sync to sync — a leak to find (e.g. compare heap snapshots taken some thousand syncs apart)`
    : grows(rssFit)
      ? `**The heap does not grow** (after GC it stayed within ${heapRange}: no JS objects retained from sync to sync), **but RSS still rose** over the
window (${rssRange}, more than twice the trend's standard error): native memory outside the JS heap (allocator arenas, compiled code, socket
buffers), which usually settles after warm-up — a run this short cannot tell the two apart; a longer one (\`BENCH_MEMORY_MAX_S\`) shows whether RSS levels off`
      : `**No measurable growth:** after the first ${fmtInt(first.syncs)} syncs the heap stayed within ${heapRange} and RSS within ${rssRange}; neither trend is larger than twice its standard error`;

  const table = points.map(
    (p) => `| ${fmtInt(p.syncs)} | ${fmtNum(p.seconds, 0)} s | ${fmtMiB(p.mem.rss)} | ${fmtMiB(p.mem.heapUsed)} | ${fmtMiB(p.mem.heapTotal)} | ${fmtMiB(p.mem.external)} |`,
  );
  const extrapolated = !reachedTarget;
  const summary =
    `Worker memory: ${fmtInt(last.syncs)} syncs${extrapolated ? ` (time cap; ${fmtInt(MEMORY_SYNCS)} targeted)` : ''}: RSS ${fmtMiB(last.mem.rss)}, heap ${fmtMiB(last.mem.heapUsed)}; ` +
    `trend per 10k syncs: heap ${perTenK(heapFit)}${grows(heapFit) ? ' (GROWS)' : ' (flat)'}, RSS ${perTenK(rssFit)}${grows(rssFit) ? ' (rising)' : ' (flat)'}` +
    `${extrapolated ? `; at 100k at most: heap ${fmtMiB(upTo(last.mem.heapUsed, heapFit))}, RSS ${fmtMiB(upTo(last.mem.rss, rssFit))}` : ''}`;

  const markdown = `## Worker memory

_Measured ${new Date().toISOString()} on ${await environmentLine()}; re-run this section alone with \`BENCH_ONLY=memory\`._

One worker process (createServer role \`worker\`, \`MOORING_WORKER_CONCURRENCY\` = ${MEMORY_CONCURRENCY}, pool ${POOL}, started with
\`--expose-gc\`) syncs Open Banking connections against sandbox banks **without latency**, fed by its own scheduler tick
(up to ${SCHEDULER_BATCH} due connections every ${SCHEDULER_TICK_MS / 1000} s). Every ${MEMORY_SAMPLE_S} s the bench forces a full garbage collection in the worker
and reads \`process.memoryUsage()\`; syncs counted are finished syncs in the database.
${
  extrapolated
    ? `
**The run stopped at ${fmtInt(last.syncs)} syncs, not ${fmtInt(MEMORY_SYNCS)}:** the time cap (\`BENCH_MEMORY_MAX_S\` = ${MEMORY_MAX_S} s) keeps
\`npm run bench\` within its budget; this machine ran ${fmtNum(rate)} syncs/s — its ${os.availableParallelism()} CPUs were busy (${cpuNote}) —
so ${fmtInt(MEMORY_SYNCS)} syncs would take about ${fmtInt(MEMORY_SYNCS / rate / 60)} minutes. The figures for 100,000 syncs below are an **extrapolation**: the
upper end of the trend measured over the last ${fmtInt(last.syncs - first.syncs)} syncs, carried on linearly — an upper bound only if that trend
holds; run with \`BENCH_ONLY=memory BENCH_MEMORY_MAX_S=${Math.ceil((MEMORY_SYNCS / rate) * 1.1)}\` to measure it.
`
    : ''
}
| Syncs done | Time | RSS | Heap used (after GC) | Heap total | External |
|---:|---:|---:|---:|---:|---:|
${table.join('\n')}

| Trend (least squares over the samples from ${fmtInt(first.syncs)} syncs on) | Heap used | RSS |
|---|---:|---:|
| Growth per 10,000 syncs (± 2 standard errors) | ${perTenK(heapFit)} | ${perTenK(rssFit)} |
| ${extrapolated ? 'At 100,000 syncs, at most (upper end of the trend, extrapolated)' : 'Measured at 100,000 syncs'} | ${fmtMiB(extrapolated ? upTo(last.mem.heapUsed, heapFit) : last.mem.heapUsed)} | ${fmtMiB(extrapolated ? upTo(last.mem.rss, rssFit) : last.mem.rss)} |

${verdict}.

Failed syncs: ${failed}. Sync rate over the run: ${fmtNum(rate)} syncs/s (${cpuNote}). Backlog (due or queued) kept under ${fmtInt(ARM_CHUNK)} by making
connections due ${fmtInt(ARM_CHUNK)} at a time (largest seen: ${fmtInt(maxBacklog)}); claims beyond one per sync: ${fmtInt(extraClaims)}.
`;
  return { markdown, summary };
}

// ---------------------------------------------------------------------------------------------
// Section: a long backlog

const BACKLOG_SYNCS = envNum('BENCH_BACKLOG_SYNCS', 100_000);
const BACKLOG_MAX_S = envNum('BENCH_BACKLOG_MAX_S', 180);
const BACKLOG_CONCURRENCY = envNum('BENCH_BACKLOG_CONCURRENCY', 50);

/**
 * Every connection queued at once, then one worker drains the queue: how many claims each sync
 * took (1 unless a sync was handed out twice), while queued syncs wait far longer than any lease.
 */
export async function runBacklogSection(): Promise<SectionResult> {
  const l = await openLab();
  const api = await apiFor(l, 0);
  const engine = await engineFor(l, 0);
  await ensureSeeded(l, BACKLOG_SYNCS);
  const armed = await withClient(l.url, async (c) => {
    await resetSyncState(c);
    return armConnections(c, BACKLOG_SYNCS);
  });
  const pre = await prequeue(engine);
  if (pre.queued !== armed) throw new Error(`armed ${armed} connections but the scheduler queued ${pre.queued}`);
  log(`backlog: ${fmtInt(pre.queued)} syncs queued in ${fmtNum(pre.ms / 1000)} s; one worker (concurrency ${BACKLOG_CONCURRENCY}), banks without latency, for up to ${BACKLOG_MAX_S} s`);
  await waitForQuiet();
  const worker = await startChild('worker (backlog)', 'worker-process.ts', ['worker', ...workerArgs(l, api, BACKLOG_CONCURRENCY)], 0);
  const t0 = performance.now();
  let oldestQueuedS = 0;
  try {
    await withClient(l.url, async (db) => {
      for (;;) {
        await sleep(5000);
        const c = await counts(db);
        const age = await db.query<{ s: number | null }>(`select extract(epoch from now() - min(created_at))::float8 as s from syncs where state = 'queued'`);
        oldestQueuedS = Math.max(oldestQueuedS, age.rows[0]?.s ?? 0);
        if (c.queued + c.running === 0 || performance.now() - t0 > BACKLOG_MAX_S * 1000) break;
      }
    });
  } finally {
    await worker.stop();
  }
  const seconds = (performance.now() - t0) / 1000;
  const { counts: final, claimed } = await withClient(l.url, async (db) => ({ counts: await counts(db), claimed: await claimCounts(db) }));
  const perSync = claimed.claims / Math.max(1, claimed.syncs);
  const drained = final.queued + final.running === 0;
  const summary = `Backlog: ${fmtInt(pre.queued)} syncs queued at once; ${fmtInt(final.done)} done in ${fmtNum(seconds, 0)} s${drained ? '' : ' (time cap)'}; claims per sync ${fmtNum(perSync, 3)} (${fmtInt(claimed.claims)} claims for ${fmtInt(claimed.syncs)} syncs)`;
  log(`  ${summary}`);
  const markdown = `## Queue claims in a long backlog

_Measured ${new Date().toISOString()} on ${await environmentLine()}; re-run this section alone with \`BENCH_ONLY=backlog\`._

**${fmtInt(pre.queued)} syncs queued at once** (the scheduler tick, \`engine.enqueueDue()\`, run until nothing was due: ${fmtNum(pre.ms / 1000)} s), then one
worker process (createServer role \`worker\`, \`MOORING_WORKER_CONCURRENCY\` = ${BACKLOG_CONCURRENCY}, pool ${POOL}) drains the queue against sandbox
banks without latency${drained ? '' : `, stopped by the time cap (\`BENCH_BACKLOG_MAX_S\` = ${BACKLOG_MAX_S} s)`}.

| Syncs queued | Done | Time | Syncs claimed | Claims (sum of attempts) | **Claims per sync** | Oldest queued sync waited | Failed |
|---:|---:|---:|---:|---:|---:|---:|---:|
| ${fmtInt(pre.queued)} | ${fmtInt(final.done)} | ${fmtNum(seconds, 0)} s | ${fmtInt(claimed.syncs)} | ${fmtInt(claimed.claims)} | **${fmtNum(perSync, 3)}** | ${fmtNum(oldestQueuedS, 0)} s | ${fmtInt(final.failed)} |

The syncs table is the only queue: a queued sync waits there until a worker's claim takes it, however long that is (the reaper
only gives back running syncs whose lease ran out), so each sync is claimed once unless its worker dies or stalls.
${drained ? '' : `At this machine's rate all ${fmtInt(pre.queued)} would take about ${fmtInt(pre.queued / Math.max(0.1, final.done / seconds) / 60)} minutes; \`BENCH_BACKLOG_MAX_S\` lifts the cap.`}
`;
  return { markdown, summary };
}
