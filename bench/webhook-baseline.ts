/**
 * Child process: the webhook baseline. A bare loop that POSTs the same signed bodies Mooring's
 * dispatcher sends (same JSON body, same headers, `Mooring-Signature` from the same `sign`, the
 * response body discarded) to the same receiver, with a fixed number of requests in flight. No
 * database work per delivery, no polling, no leases, no delivery log: the cost of the HTTP alone.
 * argv: <databaseUrl> <receiverUrl> <secret>
 * Operations (ipc.ts `call`):
 *   blast   { concurrency, fresh }     POST every event in webhook_events once; → { ms, sent, failed }.
 *                                      fetch on keep-alive connections, or with `fresh` node:http with a
 *                                      new connection per POST (agent: false), as the dispatcher does
 *   trickle { ratePerS, seconds }      POST events at a steady rate, each as soon as it is "created";
 *                                      → round-trip times (ms) of each POST
 */
import http from 'node:http';
import pg from 'pg';
import { sign } from '../src/webhooks/signing.ts';
import { reportFailure, serveParent } from './ipc.ts';

const [databaseUrl = '', url = '', secret = ''] = process.argv.slice(2);

interface Body {
  id: string;
  body: string;
}

async function loadBodies(): Promise<Body[]> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const r = await c.query<{ id: string; event_type: string; user_id: string; payload: Record<string, unknown> }>(
      'select id::text as id, event_type, user_id, payload from webhook_events order by created_at, id',
    );
    // Exactly the dispatcher's body (src/webhooks/dispatcher.ts).
    return r.rows.map((e) => ({ id: e.id, body: JSON.stringify({ id: e.id, eventType: e.event_type, userId: e.user_id, payload: e.payload }) }));
  } finally {
    await c.end();
  }
}

const headersOf = (b: Body): Record<string, string> => ({
  'content-type': 'application/json',
  'user-agent': 'Mooring-Webhooks/1',
  'mooring-event-id': b.id,
  'mooring-signature': sign(secret, b.body, Math.floor(Date.now() / 1000)),
});

/** One POST on a new connection (node:http, agent: false), as src/webhooks/dispatcher.ts sends them. */
function postFresh(b: Body): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { ...headersOf(b), 'content-length': String(Buffer.byteLength(b.body)) } }, (res) => {
      res.resume();
      res.on('end', () => resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300));
      res.on('error', () => resolve(false));
    });
    req.on('error', () => resolve(false));
    req.end(b.body);
  });
}

async function post(b: Body): Promise<boolean> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
      headers: headersOf(b),
      body: b.body,
    });
    await res.body?.cancel().catch(() => undefined);
    return res.status >= 200 && res.status < 300;
  } catch {
    return false;
  }
}

try {
  serveParent({
    async stop() {},
    async call(op, args) {
      if (op === 'blast') {
        const { concurrency, fresh } = args as { concurrency: number; fresh?: boolean };
        const send = fresh === true ? postFresh : post;
        const bodies = await loadBodies();
        const queue = [...bodies];
        let failed = 0;
        const t = performance.now();
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            for (let b = queue.shift(); b !== undefined; b = queue.shift()) if (!(await send(b))) failed += 1;
          }),
        );
        return { ms: performance.now() - t, sent: bodies.length, failed };
      }
      if (op === 'trickle') {
        const { ratePerS, seconds } = args as { ratePerS: number; seconds: number };
        const bodies = await loadBodies();
        const n = Math.min(bodies.length, Math.round(ratePerS * seconds));
        const rtts: number[] = [];
        const inFlight: Promise<void>[] = [];
        const t0 = performance.now();
        for (let i = 0; i < n; i += 1) {
          const due = t0 + (i * 1000) / ratePerS;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const b = bodies[i];
          if (b === undefined) break;
          const s = performance.now();
          inFlight.push(post(b).then(() => void rtts.push(performance.now() - s)));
        }
        await Promise.all(inFlight);
        return rtts;
      }
      throw new Error(`unknown operation ${op}`);
    },
  });
} catch (err) {
  reportFailure(err);
}
