/**
 * Domain time in tests starts at one fixed instant, whatever the hour or the date the suite runs at:
 * a Wednesday morning, far from midnight and from the ends of months, so that nightly schedules,
 * day boundaries and consent lengths fall the same way on every run.
 */
import { systemClock, type MovableClock } from '../../src/clock.ts';
import type { Timers } from '../../src/timers.ts';

export const DOMAIN_START = new Date('2026-01-14T09:00:00.000Z');

/** A domain clock that starts at DOMAIN_START and then runs at real speed. */
export function testClock(): MovableClock {
  const clock = systemClock();
  clock.setOffsetMs(DOMAIN_START.getTime() - Date.now());
  return clock;
}

/** Timers of a test server: short where a test waits on them, and user_slow slow enough to overlap two requests. */
export const TEST_TIMERS: Partial<Timers> = {
  sandboxSlowCallMs: 1_000,
  providerTimeoutMs: 5_000,
  webhookDeliveryTimeoutMs: 2_000,
  joinPollMs: 50,
};

/**
 * The server's domain time, read once and then followed with the local real-time clock (both run
 * at real speed): for building dates relative to the server's "now" without a request each time.
 * Valid until the sandbox clock is moved.
 */
export async function domainNow(baseUrl: string, adminToken: string): Promise<() => number> {
  // The server read its clock after `sentAt`: so the estimate is never behind the server's time
  // (ahead by at most one round trip), and "not later than now" checks hold.
  const sentAt = Date.now();
  const res = await fetch(`${baseUrl}/sandbox/clock`, { headers: { authorization: `Bearer ${adminToken}` } });
  if (res.status !== 200) throw new Error(`GET /sandbox/clock answered ${res.status}`);
  const serverNow = Date.parse(((await res.json()) as { now: string }).now);
  return () => serverNow + (Date.now() - sentAt);
}
