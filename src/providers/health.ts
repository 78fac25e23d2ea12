/**
 * Provider health beyond Moneyhub's static flags (SPEC section 5): a provider's `status.sync` comes
 * from its syncs over the last hour; retired providers are PERMANENTLY_UNAVAILABLE and a declared
 * outage makes them TEMPORARILY_UNAVAILABLE.
 */
import type { Availability } from './kinds.ts';

export const HEALTH_WINDOW_MS = 3_600_000;

export interface ProviderHealthFacts {
  retired: boolean;
  outageUntil: Date | null;
  attempts: number;
  successes: number;
}

export function availability(f: ProviderHealthFacts, now: Date): Availability {
  if (f.retired) return 'PERMANENTLY_UNAVAILABLE';
  if (f.outageUntil !== null && f.outageUntil.getTime() > now.getTime()) return 'TEMPORARILY_UNAVAILABLE';
  if (f.attempts === 0) return 'AVAILABLE';
  const rate = f.successes / f.attempts;
  if (rate >= 0.95) return 'AVAILABLE';
  if (rate >= 0.5) return 'PARTIALLY_AVAILABLE';
  return 'TEMPORARILY_UNAVAILABLE';
}
