/**
 * Mooring as real child processes (`node src/main.ts api|worker|start`) for tests that kill them:
 * output is kept for diagnostics, every wait is bounded, and whatever is still running when the
 * test file ends (or the test process exits) is killed by its pid.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { provideTestPki } from './pki.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The project's pinned Node (devDependency `node`). */
export const PROJECT_NODE = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'node');

const MAX_OUTPUT_CHARS = 200_000;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface MooringProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr, interleaved, newest kept). */
  output(): string;
  /** Still running (no exit seen). */
  alive(): boolean;
  exited: Promise<ExitInfo>;
  /** Waits until the output matches `re`; fails early if the process exits. */
  waitForOutput(re: RegExp, timeoutMs: number): Promise<void>;
  /** Sends `signal` and waits for the exit (SIGKILL after `graceMs` if it is still running). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitInfo>;
}

const running = new Set<MooringProcess>();

process.once('exit', () => {
  for (const p of running) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * A faked process clock (Debian's faketime, as CI runs the suite) applies to the servers a test
 * starts as well: they run on the same machine, so they share its clock.
 */
export function fakedClockEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && /^(FAKETIME\w*|LD_PRELOAD|TZ)$/.test(k)) out[k] = v;
  return out;
}

/**
 * Starts `node src/main.ts <args>` with only the given environment (plus PATH, HOME and a faked clock's
 * settings). Its data directory gets the tests' sandbox PKI; give every API process of a test its own
 * MOORING_SANDBOX_MTLS_PORT (a free port, shared with that test's workers).
 */
export function spawnMooring(name: string, args: string[], env: Record<string, string>): MooringProcess {
  if (env.MOORING_DATA_DIR !== undefined) provideTestPki(env.MOORING_DATA_DIR);
  const child = spawn(PROJECT_NODE, ['src/main.ts', ...args], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...fakedClockEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  let out = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    out += chunk.toString('utf8');
    if (out.length > MAX_OUTPUT_CHARS) out = out.slice(out.length - MAX_OUTPUT_CHARS);
    for (const l of listeners) l();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exitInfo: ExitInfo | null = null;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      running.delete(proc);
      for (const l of listeners) l();
      resolve(exitInfo);
    });
  });
  const proc: MooringProcess = {
    name,
    pid: child.pid,
    child,
    output: () => out,
    alive: () => exitInfo === null,
    exited,
    waitForOutput(re, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        const done = (err?: Error): void => {
          clearTimeout(timer);
          listeners.delete(check);
          if (err === undefined) resolve();
          else reject(err);
        };
        const check = (): void => {
          if (re.test(out)) done();
          else if (exitInfo !== null) done(new Error(`${name} exited (${JSON.stringify(exitInfo)}) before printing ${re}; its output:\n${out.slice(-4000)}`));
        };
        const timer = setTimeout(() => done(new Error(`${name} did not print ${re} within ${timeoutMs / 1000} s; its output:\n${out.slice(-4000)}`)), timeoutMs);
        listeners.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (exitInfo !== null) return exitInfo;
      try {
        process.kill(child.pid as number, signal);
      } catch {
        // exited meanwhile
      }
      const timer = setTimeout(() => {
        try {
          if (exitInfo === null) process.kill(child.pid as number, 'SIGKILL');
        } catch {
          // exited meanwhile
        }
      }, graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  running.add(proc);
  return proc;
}

/** Kills every Mooring process this test file started that is still running (by pid). */
export async function killAllMooring(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop('SIGKILL', 1_000)));
}

/**
 * Polls `probe` until it answers something other than undefined/false, at most `timeoutMs`; on
 * time-out fails with `what` and, if given, what `diagnose` says about the state at that moment.
 */
export async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false>,
  opts: { intervalMs?: number; diagnose?: () => Promise<string> } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const attempt = async (): Promise<{ value: T | undefined | false; error: unknown }> => {
    try {
      return { value: await probe(), error: null };
    } catch (error) {
      return { value: undefined, error };
    }
  };
  for (;;) {
    const { value, error } = await attempt();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      const state = opts.diagnose === undefined ? '' : `\n${await opts.diagnose().catch((e: unknown) => `(diagnosis failed: ${String(e)})`)}`;
      const last = error === null ? '' : `\nlast probe error: ${error instanceof Error ? error.message : String(error)}`;
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last}${state}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
  }
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npx mooring …`: bin/mooring.js under the project's Node, with only the given environment. */
export async function mooringCommand(args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(PROJECT_NODE, ['bin/mooring.js', ...args], {
      cwd: PROJECT_ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...fakedClockEnv(), ...env }, timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

