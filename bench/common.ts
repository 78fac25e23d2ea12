/**
 * What every bench section shares: settings from the environment, progress output, databases,
 * child processes (bench/ipc.ts protocol), CPU accounting from /proc, and waiting for a quiet machine.
 */
import { fork, execSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { FromChild, MemorySample, ToChild } from './ipc.ts';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');

export const envNum = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number (got "${raw}")`);
  return n;
};

export const ADMIN_URL = process.env.BENCH_DATABASE_URL && process.env.BENCH_DATABASE_URL !== '' ? process.env.BENCH_DATABASE_URL : 'postgres://postgres@127.0.0.1:5432/postgres';
export const KEEP_DB = process.env.BENCH_KEEP_DB === '1';
/** The key bench servers seal secrets under (32 bytes, base64). */
export const BENCH_ENCRYPTION_KEY = 'YmVuY2gtZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMtMDA=';
/** The data directory every bench process shares: the sandbox PKI lives there (the database is PostgreSQL). */
export const BENCH_DATA_DIR = path.join(os.tmpdir(), 'mooring-bench-data');
export const MAX_WAIT_MS = envNum('BENCH_MAX_WAIT_S', 150) * 1000;

const started = performance.now();
export const log = (msg: string): void => {
  console.log(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${msg}`);
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-GB');
export const fmtMs = (n: number): string => `${n.toFixed(n < 10 ? 2 : 1)} ms`;
export const fmtNum = (n: number, digits = 1): string => n.toLocaleString('en-GB', { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const fmtMiB = (bytes: number): string => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** The p-th percentile (nearest rank) of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? Number.NaN;
}

// ---------------------------------------------------------------------------------------------
// Databases

export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Drops and creates database `name`; answers its URL. */
export async function freshDatabase(name: string): Promise<string> {
  await withClient(ADMIN_URL, async (c) => {
    await c.query(`drop database if exists ${name} with (force)`);
    await c.query(`create database ${name}`);
  });
  return withDatabase(ADMIN_URL, name);
}

export async function dropDatabase(name: string): Promise<void> {
  if (KEEP_DB) return;
  await withClient(ADMIN_URL, (c) => c.query(`drop database if exists ${name} with (force)`)).catch(() => undefined);
}

/** A free loopback port (the same helper the tests use). */
export { freePort } from '../test/helpers/server.ts';

// ---------------------------------------------------------------------------------------------
// Child processes

export interface Child {
  name: string;
  port: number;
  proc: ChildProcess;
  /** Sends a message and waits for the child's answer. */
  ask(m: ToChild): Promise<FromChild>;
  /** Calls one of the child's own operations and answers its result. */
  call<T>(op: string, args?: unknown): Promise<T>;
  cpuMicros(): Promise<number>;
  memory(): Promise<MemorySample>;
  stop(): Promise<void>;
}

/** Every child started and not yet stopped, so an interrupted run can stop them all. */
export const liveChildren = new Set<Child>();

export async function startChild(name: string, script: string, args: string[], port: number, opts: { execArgv?: string[]; env?: Record<string, string> } = {}): Promise<Child> {
  const proc = fork(path.join(BENCH_DIR, script), args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [...process.execArgv, ...(opts.execArgv ?? [])],
    env: { ...process.env, ...(opts.env ?? {}) },
  });
  const waiters: ((m: FromChild) => void)[] = [];
  proc.on('message', (m: FromChild) => {
    const w = waiters.shift();
    if (w !== undefined) w(m);
  });
  const next = (): Promise<FromChild> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`${name} exited (code ${code}) before answering`));
      proc.once('exit', onExit);
      waiters.push((m) => {
        proc.off('exit', onExit);
        resolve(m);
      });
    });
  const first = await next();
  if (first.type === 'failed') throw new Error(`${name} failed to start:\n${first.message}`);
  const send = (m: ToChild): void => {
    proc.send(m);
  };
  const ask = async (m: ToChild): Promise<FromChild> => {
    const reply = next();
    send(m);
    const r = await reply;
    if (r.type === 'failed') throw new Error(`${name}: ${r.message}`);
    return r;
  };
  const child: Child = {
    name,
    port,
    proc,
    ask,
    async call<T>(op: string, args?: unknown): Promise<T> {
      const r = await ask({ type: 'call', op, args });
      if (r.type !== 'result') throw new Error(`${name}: unexpected reply ${r.type}`);
      return r.value as T;
    },
    async cpuMicros() {
      const m = await ask({ type: 'cpu' });
      if (m.type !== 'cpu') throw new Error(`${name}: unexpected reply ${m.type}`);
      return m.userUs + m.systemUs;
    },
    memory() {
      return child.call<MemorySample>('memory');
    },
    async stop() {
      liveChildren.delete(child);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      send({ type: 'stop' });
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
  liveChildren.add(child);
  return child;
}

export async function stopAllChildren(): Promise<void> {
  for (const c of [...liveChildren].reverse()) await c.stop().catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux only): PostgreSQL processes of a bench database, and the whole machine

const CLK_TCK = ((): number => {
  try {
    return Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (µs) of each PostgreSQL process working for database `dbName`, plus the WAL writer, checkpointer and background writer. */
export function postgresCpuByPid(dbName: string): Map<number, number> | null {
  const out = new Map<number, number>();
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return null;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    let cmdline: string;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      cmdline = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    if (stat.slice(stat.indexOf('(') + 1, close) !== 'postgres') continue;
    // Backends are titled "postgres: <cluster>: <user> <database> <host>(<port>) <state>".
    if (!cmdline.includes(` ${dbName} `) && !/walwriter|checkpointer|background writer/.test(cmdline)) continue;
    const fields = stat.slice(close + 2).split(' ');
    // Fields after "(comm) ": state=0, ..., utime=11, stime=12.
    out.set(Number(e), ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6);
  }
  return out;
}

/** CPU µs used since `before` by the processes alive now (processes that started since count in full). */
export function postgresCpuSince(before: Map<number, number> | null, after: Map<number, number> | null): number | null {
  if (before === null || after === null || after.size === 0) return null;
  let total = 0;
  for (const [pid, us] of after) total += us - (before.get(pid) ?? 0);
  return total;
}

/** Busy CPU time (µs) of the whole machine, all cores together. */
export function machineBusyMicros(): number | null {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
    return (busy / CLK_TCK) * 1e6;
  } catch {
    return null;
  }
}

/** CPU µs of a process by pid (utime + stime), from /proc. */
export function processCpuMicros(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6;
  } catch {
    return null;
  }
}

/**
 * Other work on the machine (e.g. test suites) skews a run. The bench waits for quiet before each run
 * and repeats a run that was disturbed anyway, within one time budget shared by all sections.
 */
export const quiet = {
  budgetMs: MAX_WAIT_MS,
  /** A run during which processes outside the bench used more than this many cores is repeated. */
  disturbedCores: 0.35,
  disturbedRuns: 0,
};

export async function waitForQuiet(): Promise<void> {
  for (;;) {
    const b0 = machineBusyMicros();
    const t0 = performance.now();
    await sleep(1000);
    const b1 = machineBusyMicros();
    if (b0 === null || b1 === null) return;
    const cores = (b1 - b0) / ((performance.now() - t0) * 1000);
    if (cores < 0.25 || quiet.budgetMs <= 0) {
      if (cores >= 0.3) log(`  (background load ${cores.toFixed(2)} cores; quiet-wait budget used up, measuring anyway)`);
      return;
    }
    log(`  background load ${cores.toFixed(2)} cores from other processes; waiting for it to settle`);
    quiet.budgetMs -= 2000;
    await sleep(1000);
  }
}

/**
 * CPU meter over a window: cores used by given child processes, PostgreSQL (database `dbName`), this
 * process, and everything else on the machine ("other", i.e. noise from outside the bench).
 */
export function cpuMeter(dbName: string, pids: () => (number | undefined)[]) {
  const t0 = performance.now();
  const self0 = process.cpuUsage();
  const pg0 = postgresCpuByPid(dbName);
  const busy0 = machineBusyMicros();
  const kids0 = pids().map(processCpuMicros);
  return () => {
    const us = (performance.now() - t0) * 1000;
    const self1 = process.cpuUsage(self0);
    const pgUs = postgresCpuSince(pg0, postgresCpuByPid(dbName));
    const busy1 = machineBusyMicros();
    const kids1 = pids().map(processCpuMicros);
    const perChild = kids1.map((v, i) => {
      const before = kids0[i];
      return v !== null && before !== null && before !== undefined ? (v - before) / us : 0;
    });
    const children = perChild.reduce((a, b) => a + b, 0);
    const postgres = pgUs === null ? null : pgUs / us;
    const bench = (self1.user + self1.system) / us;
    const machine = busy0 === null || busy1 === null ? null : (busy1 - busy0) / us;
    return {
      seconds: us / 1e6,
      /** Cores of each child, in the order `pids` gave them. */
      perChild,
      children,
      postgres,
      bench,
      machine,
      other: machine === null ? null : Math.max(0, machine - children - (postgres ?? 0) - bench),
    };
  };
}
export type CpuReading = ReturnType<ReturnType<typeof cpuMeter>>;

/**
 * Runs a measurement again (within the shared quiet-wait budget) while processes outside the bench
 * used more than quiet.disturbedCores during it.
 */
export async function repeatIfDisturbed<T>(label: string, costMs: number, fn: () => Promise<T>, otherCores: (r: T) => number | null): Promise<T> {
  for (;;) {
    const r = await fn();
    const other = otherCores(r);
    if (other === null || other <= quiet.disturbedCores || quiet.budgetMs < costMs) return r;
    quiet.budgetMs -= costMs;
    quiet.disturbedRuns += 1;
    log(`  ${label} was disturbed (${other.toFixed(2)} cores used outside the bench); repeating it`);
  }
}

/**
 * The value of `const NAME = <number>` in a file of src/ (numeric separators allowed), so method notes
 * can quote the settings the measured code ran with; null when it is not found.
 */
export function constantInSource(file: string, name: string): number | null {
  try {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    const m = new RegExp(`const ${name} = ([\\d_]+)`).exec(text);
    return m?.[1] === undefined ? null : Number(m[1].replace(/_/g, ''));
  } catch {
    return null;
  }
}

/** "2 CPUs (model), 23.5 GiB, Node v22…, PostgreSQL 15…": what a section was measured on (kept with it in BENCHMARKS.md). */
export async function environmentLine(): Promise<string> {
  const pgVersion = await withClient(ADMIN_URL, async (c) => (await c.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]?.v ?? '?').catch(() => '?');
  return `${os.availableParallelism()} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB, Node ${process.version}, PostgreSQL ${pgVersion}`;
}

/** Whether a file of src/ contains `text` (for method notes that depend on how the measured code works). */
export function sourceContains(file: string, text: string): boolean {
  try {
    return fs.readFileSync(path.join(ROOT, file), 'utf8').includes(text);
  } catch {
    return false;
  }
}
