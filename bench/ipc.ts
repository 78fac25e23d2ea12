/**
 * The little protocol between the bench (parent) and a server under test (child process): the child
 * announces it is listening; the parent asks for the child's CPU time and finally tells it to stop.
 */
export type ToChild = { type: 'cpu' } | { type: 'stop' };
export type FromChild = { type: 'ready' } | { type: 'cpu'; userUs: number; systemUs: number } | { type: 'failed'; message: string };

/** Serves the parent's requests in a child process; `stop` closes the server and exits. */
export function serveParent(stop: () => Promise<void>): void {
  const send = (m: FromChild): void => {
    process.send?.(m);
  };
  process.on('message', (m: ToChild) => {
    if (m.type === 'cpu') {
      const u = process.cpuUsage();
      send({ type: 'cpu', userUs: u.user, systemUs: u.system });
    } else if (m.type === 'stop') {
      stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    }
  });
  // The parent went away (e.g. Ctrl-C): do not linger.
  process.on('disconnect', () => {
    stop().finally(() => process.exit(0));
  });
  send({ type: 'ready' });
}

export function reportFailure(err: unknown): void {
  process.send?.({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies FromChild);
  process.exitCode = 1;
}
