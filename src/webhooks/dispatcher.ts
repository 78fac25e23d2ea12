/**
 * Delivers logged events to each client's endpoint: signed, one POST per attempt, retried with
 * exponential back-off (in domain time, so the sandbox clock drives it) until 24 hours after the
 * event. Redirects are not followed; each attempt has a time-out on the whole exchange.
 *
 * Scheduling is per delivery slot, never per batch: events are leased ahead into a local queue,
 * each finished delivery frees its slot for the next startable event at once, and a client whose
 * receiver hangs holds at most PER_CLIENT_IN_FLIGHT slots (and PER_CLIENT_HELD leased events)
 * while every other client's events keep flowing. Attempts are recorded in batches (one statement
 * each), and connections to receivers are kept alive and reused.
 */
import type { SecretBox } from '../crypto/secrets.ts';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { webhooksRepository, type AttemptRecord, type LeasedEvent } from './repository.ts';
import { DeliveryStopped, webhookSender, type Outcome } from './sender.ts';
import { DELIVERY_TIMEOUT_MS, DELIVERY_WINDOW_HOURS, retryDelaySeconds } from './policy.ts';
import type { UrlPolicy } from './url-policy.ts';
import { HOUR_MS } from '../time.ts';

const LEASE_MS = 2 * 60_000;
/** Events leased ahead, in all. */
const BATCH = 200;
/** Deliveries to one client at once: a slow or dead receiver can hold at most this many slots. */
const PER_CLIENT_IN_FLIGHT = 5;
/** Leased events of one client held at once (in flight or queued; 8 rounds of its slots), so one backlog cannot fill the queue. */
const PER_CLIENT_HELD = 40;
/** Attempts recorded per statement at most. */
const RECORD_BATCH = 500;
/** One deliverDue call returns after this long even with work left, so its caller stays responsive. */
const MAX_RUN_MS = 30_000;

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
  /** How long one attempt may take, in real time, before it fails (default DELIVERY_TIMEOUT_MS, SPEC: 10 s). */
  deliveryTimeoutMs?: number;
  /** Told the outcome of every attempt (Prometheus counters). */
  onAttempt?: (outcome: 'delivered' | 'failed' | 'abandoned') => void;
}

export function webhookDispatcher(deps: DispatcherDeps) {
  const repo = webhooksRepository(deps.db, deps.secrets);
  const realNow = deps.realNowMs ?? (() => Date.now());
  const timeoutMs = deps.deliveryTimeoutMs ?? DELIVERY_TIMEOUT_MS;
  // Long enough for a client's held events to be tried one slot-round after another, even if every one times out.
  const leaseMs = Math.max(LEASE_MS, (PER_CLIENT_HELD / PER_CLIENT_IN_FLIGHT + 1) * timeoutMs);
  const sender = webhookSender({ policy: deps.policy, timeoutMs, realNowMs: realNow });

  /** Leased events not started yet, in the lease's order (clients interleaved). */
  const queue: LeasedEvent[] = [];
  const inFlight = new Map<string, number>();
  /** Leased events per client, queued or in flight. */
  const heldPerClient = new Map<string, number>();
  /** Ids leased and not yet recorded: a lease renewed by a moved clock must not start them twice. */
  const heldIds = new Set<string>();
  const pending: AttemptRecord[] = [];
  let running = 0;
  let attemptsMade = 0;
  let leasing: Promise<number> | null = null;
  let leaseAgain = false;
  let moreDue = false;
  let flushing: Promise<void> | null = null;
  let stopped = false;
  let wake: (() => void)[] = [];
  const notify = (): void => {
    for (const w of wake.splice(0)) w();
  };
  const bump = (m: Map<string, number>, key: string, by: number): void => {
    const n = (m.get(key) ?? 0) + by;
    if (n > 0) m.set(key, n);
    else m.delete(key);
  };

  /** Starts queued events while there are free slots, skipping clients at their in-flight limit. */
  function startQueued(): void {
    for (let i = 0; i < queue.length && running < deps.concurrency; ) {
      const e = queue[i] as LeasedEvent;
      if ((inFlight.get(e.client_id) ?? 0) >= PER_CLIENT_IN_FLIGHT) {
        i += 1;
        continue;
      }
      queue.splice(i, 1);
      launch(e);
    }
  }

  function launch(e: LeasedEvent): void {
    running += 1;
    bump(inFlight, e.client_id, 1);
    void deliver(e).finally(() => {
      running -= 1;
      bump(inFlight, e.client_id, -1);
      bump(heldPerClient, e.client_id, -1);
      startQueued();
      // Lease more once this client has less than two rounds of its slots queued (its next events may be due),
      // early enough that its slots do not idle while the lease runs.
      const queuedForClient = (heldPerClient.get(e.client_id) ?? 0) - (inFlight.get(e.client_id) ?? 0);
      if (moreDue && queuedForClient < 2 * PER_CLIENT_IN_FLIGHT) void leaseSafely();
      notify();
    });
  }

  async function deliver(e: LeasedEvent): Promise<void> {
    const started = realNow();
    let result: Outcome;
    try {
      result = await sender.send(e);
    } catch (err) {
      // Cut off by stop(): not an attempt to record (the lease makes the event due again).
      if (err instanceof DeliveryStopped) return;
      result = { ok: false, responseCode: null, error: `could not reach the receiver (${err instanceof Error ? err.message : String(err)})` };
    }
    const at = deps.clock.now();
    const expired = at.getTime() >= e.created_at.getTime() + DELIVERY_WINDOW_HOURS * HOUR_MS;
    const gaveUp = !result.ok && expired;
    if (gaveUp) deps.log.warn({ eventId: e.id, clientId: e.client_id }, 'webhook delivery abandoned after 24 hours of failures');
    attemptsMade += 1;
    deps.onAttempt?.(result.ok ? 'delivered' : gaveUp ? 'abandoned' : 'failed');
    pending.push({
      eventId: e.id, at, ok: result.ok, responseCode: result.responseCode, error: result.error, durationMs: realNow() - started,
      nextAttemptAt: result.ok || gaveUp ? null : new Date(at.getTime() + retryDelaySeconds(e.attempts + 1) * 1000),
      gaveUp,
    });
    if (flushing === null) flushing = flush();
  }

  /** Records finished attempts, a batch per statement, until none are pending. */
  async function flush(): Promise<void> {
    try {
      // Let the deliveries finishing in this turn join the batch.
      await new Promise<void>((r) => setImmediate(r));
      while (pending.length > 0) {
        const batch = pending.splice(0, RECORD_BATCH);
        try {
          await repo.recordAttempts(batch);
        } catch (err) {
          // The events stay leased and are tried again when the lease ends.
          deps.log.warn({ err: err instanceof Error ? err.message : String(err), attempts: batch.length }, 'could not record webhook delivery attempts');
        }
        for (const a of batch) heldIds.delete(a.eventId);
      }
    } finally {
      flushing = null;
      notify();
    }
  }

  /** Leases due events for the room left (overall and per client) and starts what it can; answers how many were leased. */
  async function lease(): Promise<number> {
    if (leasing !== null) {
      leaseAgain = true;
      return leasing;
    }
    const run = async (): Promise<number> => {
      let total = 0;
      do {
        leaseAgain = false;
        const room = BATCH - queue.length - running;
        if (stopped || room <= 0) break;
        const now = deps.clock.now();
        const rows = await repo.leaseDue(now, new Date(now.getTime() + leaseMs), room, PER_CLIENT_HELD, heldPerClient);
        moreDue = rows.length > 0;
        for (const e of rows) {
          if (heldIds.has(e.id)) continue;
          heldIds.add(e.id);
          bump(heldPerClient, e.client_id, 1);
          queue.push(e);
          total += 1;
        }
        startQueued();
      } while (leaseAgain);
      return total;
    };
    leasing = run().finally(() => {
      leasing = null;
    });
    return leasing;
  }

  function leaseSafely(): Promise<void> {
    return lease().then(
      () => undefined,
      (err: unknown) => deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not lease webhook events'),
    );
  }

  const changed = (): Promise<void> => new Promise((r) => wake.push(r));

  return {
    /** Leases what is due and starts it; does not wait for deliveries (the worker's loop calls this often). */
    async pump(): Promise<number> {
      if (stopped) return 0;
      return lease();
    },

    /** Delivers every event due now and waits for the attempts to be recorded; answers how many attempts were made. */
    async deliverDue(): Promise<number> {
      const before = attemptsMade;
      const startedAt = realNow();
      for (;;) {
        const leased = stopped ? 0 : await lease();
        if (running === 0 && leased === 0) break;
        if (realNow() - startedAt > MAX_RUN_MS) break;
        if (running > 0) await changed();
      }
      while (flushing !== null || pending.length > 0) {
        if (flushing === null) flushing = flush();
        await flushing;
      }
      return attemptsMade - before;
    },

    /** Stops leasing, cuts off attempts in flight (they are tried again when their lease ends) and records the finished ones. */
    async stop(): Promise<void> {
      stopped = true;
      sender.stop();
      while (running > 0) await changed();
      while (flushing !== null) await flushing;
      if (pending.length > 0) await flush();
      if (leasing !== null) await leasing.catch(() => undefined);
      wake = [];
    },
  };
}
export type WebhookDispatcher = ReturnType<typeof webhookDispatcher>;
