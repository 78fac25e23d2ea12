/**
 * Delivers logged events to each client's endpoint: signed, one POST per attempt, retried with
 * exponential back-off (in domain time, so the sandbox clock drives it) until 24 hours after the
 * event. Deliveries run in parallel with a per-request time-out, so a slow or dead receiver never
 * holds up the others, and redirects are not followed.
 */
import type { SecretBox } from '../crypto/secrets.ts';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { webhooksRepository, type EventRow } from './repository.ts';
import { sign } from './signing.ts';
import { DELIVERY_TIMEOUT_MS, DELIVERY_WINDOW_HOURS, retryDelaySeconds } from './types.ts';
import http from 'node:http';
import https from 'node:https';
import { checkWebhookUrl, guardedLookup, type UrlPolicy } from './url-policy.ts';

const LEASE_MS = 2 * 60_000;
const BATCH = 200;
const HOUR_MS = 3_600_000;
/** Events of one client in one batch; the rest wait for the next batch. */
const PER_CLIENT_PER_BATCH = 20;
/** Deliveries to one client at once: a slow or dead receiver can hold at most this many workers. */
const PER_CLIENT_IN_FLIGHT = 5;
/** One call returns after this long even with work left, so its caller's loop stays responsive. */
const MAX_RUN_MS = 30_000;

/** Interleaves events so each client's first event goes before any client's second. */
function roundRobinByClient<T extends { client_id: string }>(rows: T[]): T[] {
  const byClient = new Map<string, T[]>();
  for (const r of rows) byClient.set(r.client_id, [...(byClient.get(r.client_id) ?? []), r]);
  const out: T[] = [];
  for (let i = 0; out.length < rows.length; i += 1) for (const list of byClient.values()) if (list[i] !== undefined) out.push(list[i] as T);
  return out;
}

export interface DispatcherDeps {
  db: Db;
  /** Opens the endpoints' signing secrets. */
  secrets: SecretBox;
  clock: Clock;
  policy: UrlPolicy;
  concurrency: number;
  log: { warn(obj: object, msg: string): void };
  /** Real time for signatures (receivers compare `t` with their own clock). */
  realNowMs?: () => number;
}

export function webhookDispatcher(deps: DispatcherDeps) {
  const repo = webhooksRepository(deps.db, deps.secrets);
  const realNow = deps.realNowMs ?? (() => Date.now());

  async function attempt(e: EventRow & { url: string | null; secret: string | null }): Promise<{ ok: boolean; responseCode: number | null; error: string | null }> {
    if (e.url === null || e.secret === null) return { ok: false, responseCode: null, error: 'the client has no webhook endpoint' };
    const verdict = await checkWebhookUrl(e.url, deps.policy);
    if (!verdict.ok) return { ok: false, responseCode: null, error: `refused: ${verdict.reason}` };
    const body = JSON.stringify({ id: e.id, eventType: e.event_type, userId: e.user_id, payload: e.payload });
    try {
      const status = await post(e.url, body, {
        'content-type': 'application/json',
        'user-agent': 'Mooring-Webhooks/1',
        'mooring-event-id': e.id,
        'mooring-signature': sign(e.secret, body, Math.floor(realNow() / 1000)),
      });
      const ok = status >= 200 && status < 300;
      return { ok, responseCode: status, error: ok ? null : `the receiver answered ${status}` };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'ETIMEDOUT') return { ok: false, responseCode: null, error: `no answer within ${DELIVERY_TIMEOUT_MS} ms` };
      if (code === 'EADDRNOTALLOWED') return { ok: false, responseCode: null, error: err instanceof Error ? err.message : 'refused' };
      return { ok: false, responseCode: null, error: 'could not connect to the receiver' };
    }
  }

  /** One POST; redirects are not followed; the DNS lookup refuses addresses the policy forbids. */
  function post(url: string, body: string, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
      const target = new URL(url);
      const request = (target.protocol === 'https:' ? https.request : http.request)(
        target,
        { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, lookup: guardedLookup(deps.policy), agent: false },
        (res) => {
          res.resume();
          res.on('end', () => {
            clearTimeout(timer);
            resolve(res.statusCode ?? 0);
          });
          res.on('error', reject);
        },
      );
      // A limit on the whole exchange, not just on idle time: a receiver that trickles is cut off too.
      const timer = setTimeout(() => request.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), DELIVERY_TIMEOUT_MS);
      request.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      request.end(body);
    });
  }

  return {
    /** Delivers every event due now; answers how many attempts were made. */
    async deliverDue(): Promise<number> {
      let total = 0;
      const startedAt = realNow();
      for (;;) {
        const now = deps.clock.now();
        const due = await repo.leaseDue(now, new Date(now.getTime() + LEASE_MS), BATCH, PER_CLIENT_PER_BATCH);
        const queue = roundRobinByClient(due);
        const inFlight = new Map<string, number>();
        const waiting: (() => void)[] = [];
        /** The next event whose client has a free delivery slot; waits while every queued client is busy. */
        const take = async (): Promise<(typeof queue)[number] | undefined> => {
          for (;;) {
            const i = queue.findIndex((q) => (inFlight.get(q.client_id) ?? 0) < PER_CLIENT_IN_FLIGHT);
            const picked = i >= 0 ? queue.splice(i, 1)[0] : undefined;
            if (picked !== undefined) {
              inFlight.set(picked.client_id, (inFlight.get(picked.client_id) ?? 0) + 1);
              return picked;
            }
            if (queue.length === 0) return undefined;
            await new Promise<void>((r) => waiting.push(r));
          }
        };
        const release = (clientId: string): void => {
          inFlight.set(clientId, (inFlight.get(clientId) ?? 1) - 1);
          for (const wake of waiting.splice(0)) wake();
        };
        const workers = Array.from({ length: Math.min(deps.concurrency, queue.length) }, async () => {
          for (let e = await take(); e !== undefined; e = await take()) {
            try {
              const started = realNow();
              const result = await attempt(e);
              const at = deps.clock.now();
              const attempts = e.attempts + 1;
              const expired = at.getTime() >= e.created_at.getTime() + DELIVERY_WINDOW_HOURS * HOUR_MS;
              const gaveUp = !result.ok && expired;
              if (gaveUp) deps.log.warn({ eventId: e.id, clientId: e.client_id }, 'webhook delivery abandoned after 24 hours of failures');
              await repo.recordAttempt({
                eventId: e.id, at, ok: result.ok, responseCode: result.responseCode, error: result.error, durationMs: realNow() - started,
                nextAttemptAt: result.ok || gaveUp ? null : new Date(at.getTime() + retryDelaySeconds(attempts) * 1000),
                gaveUp,
              });
            } finally {
              release(e.client_id);
            }
          }
        });
        await Promise.all(workers);
        total += due.length;
        if (due.length === 0 || realNow() - startedAt > MAX_RUN_MS) return total;
      }
    },
  };
}
export type WebhookDispatcher = ReturnType<typeof webhookDispatcher>;
