/**
 * The operator's bearer token guards admin, sandbox-control and client-registration routes. Failed
 * attempts are throttled per client address (SPEC section 1): beyond 10 failures in a minute every
 * admin authentication from that address answers 429 with Retry-After until the window clears.
 * The throttle is in memory, per process (each API process counts on its own), and keeps real
 * time, as security timers do.
 */
import { bearerToken, sameSecret } from '../crypto/compare.ts';
import type { FastifyRequest } from 'fastify';
import { AppError, unauthorized } from '../errors.ts';


export const ADMIN_MAX_FAILURES = 10;
export const ADMIN_FAILURE_WINDOW_MS = 60_000;
/** Addresses remembered at most; beyond it the oldest are forgotten (bounds memory under a spray of addresses). */
const MAX_TRACKED_ADDRESSES = 10_000;

export interface AdminThrottle {
  /** Seconds until `address` may try again, or null when it may try now. */
  retryAfterSeconds(address: string): number | null;
  recordFailure(address: string): void;
}

export function createAdminThrottle(opts: { now?: () => number; maxFailures?: number; windowMs?: number } = {}): AdminThrottle {
  const now = opts.now ?? (() => Date.now());
  const max = opts.maxFailures ?? ADMIN_MAX_FAILURES;
  const windowMs = opts.windowMs ?? ADMIN_FAILURE_WINDOW_MS;
  const failures = new Map<string, number[]>();
  const recent = (address: string, t: number): number[] => {
    const kept = (failures.get(address) ?? []).filter((at) => at > t - windowMs);
    if (kept.length === 0) failures.delete(address);
    else failures.set(address, kept);
    return kept;
  };
  return {
    retryAfterSeconds(address) {
      const t = now();
      const kept = recent(address, t);
      if (kept.length < max) return null;
      // Free again when enough of the window's failures have aged out to leave room for one more.
      const freeAt = (kept[kept.length - max] ?? t) + windowMs;
      return Math.max(1, Math.ceil((freeAt - t) / 1000));
    },
    recordFailure(address) {
      const t = now();
      const kept = recent(address, t);
      kept.push(t);
      if (kept.length > max + 1) kept.splice(0, kept.length - max - 1);
      failures.delete(address);
      failures.set(address, kept);
      if (failures.size > MAX_TRACKED_ADDRESSES) {
        const oldest = failures.keys().next();
        if (oldest.done !== true) failures.delete(oldest.value);
      }
    },
  };
}

export const tooManyAttempts = (retryAfterSeconds: number): AppError =>
  new AppError(429, 'too_many_attempts', `Too many failed admin authentications from this address; try again in ${retryAfterSeconds} s`, {
    headers: { 'retry-after': String(retryAfterSeconds) },
    details: { retryAfterSeconds },
  });

/** Whether `given` is the admin token (constant time). */
export function isAdminToken(adminToken: string, given: string): boolean {
  return sameSecret(given, adminToken);
}

export function adminGuard(adminToken: string, throttle?: AdminThrottle): (req: FastifyRequest) => Promise<void> {
  return async (req) => {
    const wait = throttle?.retryAfterSeconds(req.ip) ?? null;
    if (wait !== null) throw tooManyAttempts(wait);
    const given = bearerToken(req.headers.authorization);
    if (given === null || !isAdminToken(adminToken, given)) {
      // A request with no bearer at all is not a guess; a wrong one is.
      if (given !== null) throttle?.recordFailure(req.ip);
      throw unauthorized('This needs the admin token (MOORING_ADMIN_TOKEN) as a bearer token');
    }
  };
}
