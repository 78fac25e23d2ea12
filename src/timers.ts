/**
 * Every real-time interval and time-out of a Mooring process, in one place, so that createServer
 * can be given other values (tests make them short and never wait on seconds they cannot control).
 * These are real-time durations (timers, leases, time-outs); domain time is the clock's (clock.ts).
 * A leaf module: it imports nothing of ours.
 */
export interface Timers {
  /** How often a worker looks for due connections and queues their syncs. */
  schedulerTickMs: number;
  /** How often a worker sends syncs whose process died back to the queue. */
  reaperIntervalMs: number;
  /** How often an idle worker looks for due syncs in the queue (it also looks at once after its scheduler tick, its reaper or a finished sync). */
  claimPollMs: number;
  /** How long a running sync's lease lasts; its runner renews it at a third of that. */
  runningLeaseSeconds: number;
  /** How long a requested sync is left to its requester before any worker may claim it (the requester died). */
  queuedLeaseSeconds: number;
  /** How often a request that joined a running sync looks whether it is done. */
  joinPollMs: number;
  /** How long a request waits for a sync it joined before answering 504. */
  joinTimeoutMs: number;
  /** How long one HTTP call to a provider may take. */
  providerTimeoutMs: number;
  /** How long a webhook receiver has to answer one delivery (SPEC section 9: 10 s). */
  webhookDeliveryTimeoutMs: number;
  /** How often due webhook deliveries are looked for. */
  webhookPollMs: number;
  /** How often time-driven connection events (expiry, reminders) are looked for. */
  eventSweepMs: number;
  /** How often expired tokens, sessions and old journeys are purged. */
  purgeEveryMs: number;
  /** How often a process picks up a sandbox clock moved by another process. */
  clockRefreshMs: number;
  /** How long every call of a `user_slow` sandbox connection takes. */
  sandboxSlowCallMs: number;
}

export const DEFAULT_TIMERS: Readonly<Timers> = Object.freeze({
  schedulerTickMs: 5_000,
  reaperIntervalMs: 10_000,
  claimPollMs: 500,
  runningLeaseSeconds: 30,
  queuedLeaseSeconds: 120,
  joinPollMs: 100,
  joinTimeoutMs: 5 * 60_000,
  providerTimeoutMs: 10_000,
  webhookDeliveryTimeoutMs: 10_000,
  webhookPollMs: 250,
  eventSweepMs: 10_000,
  purgeEveryMs: 60_000,
  clockRefreshMs: 1_000,
  sandboxSlowCallMs: 2_000,
});

export function resolveTimers(overrides: Partial<Timers> = {}): Timers {
  const timers: Timers = { ...DEFAULT_TIMERS, ...overrides };
  for (const [name, value] of Object.entries(timers)) {
    if (!Number.isFinite(value) || value <= 0) throw new Error(`timer ${name} must be a positive number (got ${String(value)})`);
  }
  if (timers.providerTimeoutMs <= timers.sandboxSlowCallMs) {
    throw new Error(`timer providerTimeoutMs (${timers.providerTimeoutMs}) must be longer than sandboxSlowCallMs (${timers.sandboxSlowCallMs}), or user_slow would time out`);
  }
  return timers;
}
