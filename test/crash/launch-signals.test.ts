/**
 * The documented ways to run Mooring — `npm start` and `npx mooring start` (SPEC section 1) — stop
 * gracefully on SIGTERM and SIGINT sent to the command the operator started (what a process
 * supervisor or `kill <pid>` does): every process it started exits and the port is free again.
 *
 * npm runs both through `sh -c` and forwards those signals to the shell alone, so without care the
 * shell dies and leaves the server running, orphaned, still holding the port.
 *
 * Linux only (reads /proc to see every process of the command's process group).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fakedClockEnv, PROJECT_ROOT, waitUntil } from '../helpers/processes.ts';
import { freePort } from '../helpers/server.ts';
import { provideTestPki } from '../helpers/pki.ts';

const ADMIN_TOKEN = 'launch-signals-admin-token-0123456789abcdef';
/** A first start applies every migration to a fresh embedded database. */
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;

/** The processes of process group `pgid` that have not exited (zombies do not count). */
function liveMembers(pgid: number): string[] {
  const members: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces, so split after its closing parenthesis.
    const close = stat.lastIndexOf(')');
    const [state, , pgrp] = stat.slice(close + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') members.push(`${entry} ${stat.slice(stat.indexOf('(') + 1, close)}`);
  }
  return members;
}

const portIsFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });

async function healthy(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/health`)).status === 200;
  } catch {
    return false;
  }
}

const started: ChildProcess[] = [];
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mooring-signals-'));

afterAll(() => {
  for (const child of started) {
    if (child.pid === undefined) continue;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // the whole group is gone already
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

/** Starts `command args` in a process group of its own, as a shell would for a job. */
function launch(command: string, args: string[], port: number, mtlsPort: number): { child: ChildProcess; output: () => string; closed: Promise<void> } {
  provideTestPki(dataDir);
  const child = spawn(command, args, {
    cwd: PROJECT_ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? os.tmpdir(),
      ...fakedClockEnv(),
      PORT: String(port),
      HOST: '127.0.0.1',
      MOORING_DATA_DIR: dataDir,
      MOORING_SANDBOX_MTLS_PORT: String(mtlsPort),
      MOORING_ADMIN_TOKEN: ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
    },
  });
  started.push(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString('utf8')));
  // 'close' comes once the launcher has exited and every process holding its output pipes (the
  // server, which inherited them) has closed them: only then has all they wrote been read here.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return { child, output: () => out, closed };
}

interface Case {
  command: string;
  args: string[];
  signal: NodeJS.Signals;
  /** Who gets the signal: the launcher's pid (`kill <pid>`) or its whole process group (Ctrl-C in a terminal). */
  to: 'pid' | 'group';
}

describe.skipIf(process.platform !== 'linux')('stopping the documented launch commands with a signal', () => {
  const cases: Case[] = [
    { command: 'npm', args: ['start'], signal: 'SIGTERM', to: 'pid' },
    { command: 'npm', args: ['start'], signal: 'SIGINT', to: 'pid' },
    { command: 'npx', args: ['mooring', 'start'], signal: 'SIGTERM', to: 'pid' },
    // npm forwards a SIGINT sent to it alone to its `sh -c`, which waits for its child rather than
    // passing it on (POSIX shells do); Ctrl-C in a terminal signals the whole group, as here.
    { command: 'npx', args: ['mooring', 'start'], signal: 'SIGINT', to: 'group' },
  ];

  it.each(cases)('$command $args.0 on $signal to its $to: every process it started exits and the port is free', async ({ command, args, signal, to }) => {
    const label = [command, ...args].join(' ');
    const port = await freePort();
    const { child, output, closed } = launch(command, args, port, await freePort());
    const pgid = child.pid;
    if (pgid === undefined) throw new Error(`could not start ${label}`);
    await waitUntil(`${label} answering /health`, START_TIMEOUT_MS, () => healthy(port), { diagnose: async () => output().slice(-3000) });
    expect(liveMembers(pgid).length, 'the launcher, its shell and the server').toBeGreaterThanOrEqual(2);

    process.kill(to === 'pid' ? pgid : -pgid, signal);

    await waitUntil(`every process of ${label} to exit after ${signal}`, STOP_TIMEOUT_MS, async () => liveMembers(pgid).length === 0, {
      diagnose: async () => `still running: ${liveMembers(pgid).join(', ')}\n${output().slice(-3000)}`,
    });
    expect(await portIsFree(port)).toBe(true);
    // Every process has exited; what they wrote may still be in the pipe until it is read.
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS))]);
    expect(output()).toMatch(/received, finishing requests in flight and closing/);
    expect(output()).not.toMatch(/shutdown took longer/);
  }, START_TIMEOUT_MS + STOP_TIMEOUT_MS + 10_000);
});
