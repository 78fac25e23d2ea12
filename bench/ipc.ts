/**
 * The little protocol between the bench (parent) and a server under test (child process): the child
 * announces it is listening; the parent asks for the child's CPU time, optionally starts/stops a CPU
 * profile and collects query statistics, calls the child's own operations (`call`: e.g. time one
 * scheduler tick, sample memory), and finally tells it to stop.
 */
export type ToChild =
  | { type: 'cpu' }
  | { type: 'profile-start' }
  | { type: 'profile-stop'; file: string }
  | { type: 'queries' }
  | { type: 'call'; op: string; args?: unknown }
  | { type: 'stop' };

export interface QueryStat {
  sql: string;
  count: number;
  totalMs: number;
  /** The parameters of its latest execution (the console section EXPLAINs statements with them). */
  params?: unknown[];
}

export type FromChild =
  | { type: 'ready' }
  | { type: 'cpu'; userUs: number; systemUs: number }
  | { type: 'ok' }
  | { type: 'queries'; stats: QueryStat[] }
  | { type: 'result'; value: unknown }
  | { type: 'failed'; message: string };

export interface ChildHooks {
  stop(): Promise<void>;
  queries?(): QueryStat[];
  /** The child's own operations, answered as `result` (or `failed` when they throw). */
  call?(op: string, args: unknown): Promise<unknown>;
}

/** Memory of this process, after a full garbage collection when the process runs with --expose-gc. */
export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  gc: boolean;
}

export function memorySample(): MemorySample {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc !== undefined) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, gc: gc !== undefined };
}

/** Serves the parent's requests in a child process; `stop` closes the server and exits. */
export function serveParent(hooks: ChildHooks): void {
  const send = (m: FromChild): void => {
    process.send?.(m);
  };
  let profiler: { stop(file: string): Promise<void> } | null = null;
  process.on('message', (m: ToChild) => {
    if (m.type === 'cpu') {
      const u = process.cpuUsage();
      send({ type: 'cpu', userUs: u.user, systemUs: u.system });
    } else if (m.type === 'profile-start') {
      startProfiler().then(
        (p) => {
          profiler = p;
          send({ type: 'ok' });
        },
        (err: unknown) => send({ type: 'failed', message: String(err) }),
      );
    } else if (m.type === 'profile-stop') {
      const p = profiler;
      profiler = null;
      (p === null ? Promise.resolve() : p.stop(m.file)).then(
        () => send({ type: 'ok' }),
        (err: unknown) => send({ type: 'failed', message: String(err) }),
      );
    } else if (m.type === 'queries') {
      send({ type: 'queries', stats: hooks.queries?.() ?? [] });
    } else if (m.type === 'call') {
      const call = hooks.call;
      (call === undefined ? Promise.reject(new Error(`this child has no operation "${m.op}"`)) : call(m.op, m.args)).then(
        (value) => send({ type: 'result', value }),
        (err: unknown) => send({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
    } else if (m.type === 'stop') {
      hooks.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    }
  });
  // The parent went away (e.g. Ctrl-C): do not linger.
  process.on('disconnect', () => {
    hooks.stop().finally(() => process.exit(0));
  });
  send({ type: 'ready' });
}

/** A V8 CPU profile of this process between start and stop (written as a .cpuprofile file). */
async function startProfiler(): Promise<{ stop(file: string): Promise<void> }> {
  const { Session } = await import('node:inspector/promises');
  const fs = await import('node:fs');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return {
    async stop(file: string) {
      const { profile } = await session.post('Profiler.stop');
      fs.writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

export function reportFailure(err: unknown): void {
  process.send?.({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies FromChild);
  process.exitCode = 1;
}
