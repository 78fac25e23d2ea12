/**
 * Provider health beyond Moneyhub's static flags (SPEC section 5): a provider's `status.sync` comes
 * from its syncs over the last hour; retired providers are PERMANENTLY_UNAVAILABLE and a declared
 * outage makes them TEMPORARILY_UNAVAILABLE.
 *
 * A rate-limited sync (the provider answered 429) counts as neither success nor failure, here and
 * in back-off: the provider was up and answering, so it is no failure, and it brought no data, so
 * it is no success either; counting it as a failure would also make the scheduler back off (and
 * show the provider unavailable) because Mooring itself asked too often. The repositories leave
 * such syncs out of the counts these functions receive.
 *
 * `status.auth` is the same `availability` over the connect and repair journeys (reauth,
 * reconsent, refresh) that reached the provider and finished in the window: those it granted are
 * successes, those that failed by `journeyFailureIsProviders` are failures, and the rest are not
 * counted (see there).
 */
import { HOUR_MS } from '../time.ts';
import type { Availability } from './kinds.ts';
import type { ProviderErrorKind } from './provider.ts';

export const HEALTH_WINDOW_MS = HOUR_MS;

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

/** Fewer attempts than this in the health window say too little about a provider to back off. */
export const BACKOFF_MIN_ATTEMPTS = 10;

/**
 * Whether the scheduler should stop adding load to a provider: it failed more than half of at
 * least BACKOFF_MIN_ATTEMPTS syncs in the health window. Only provider errors count here: a refused
 * credential or a one-time code is the user's, not the provider's (unlike `availability`, which
 * counts every sync that did not fully succeed).
 */
export function shouldBackOff(f: { attempts: number; providerErrors: number }): boolean {
  return f.attempts >= BACKOFF_MIN_ATTEMPTS && (f.attempts - f.providerErrors) * 2 < f.attempts;
}

/**
 * Whether a journey that ended with this provider error counts against the provider's `status.auth`:
 * only when one of Mooring's own calls to the provider failed — down or 5xx, an unreadable answer,
 * a time-out. A user who declines, cancels or abandons at the bank, or whom the bank refuses (SPEC
 * section 8: `access_denied`), a wrong credential or code, a one-time code asked for, and a 429
 * (Mooring asked too often) say nothing about whether the provider works, and are not counted at
 * all; nor are Mooring's own failures, as with syncs; nor is anything raised on the callback's own
 * parameters (`fromCallback`: the user's browser, which any client drives, brought them, so a
 * malformed or forged callback cannot make a provider look unavailable).
 */
export function journeyFailureIsProviders(err: { kind: ProviderErrorKind; fromCallback: boolean }): boolean {
  if (err.fromCallback) return false;
  return err.kind === 'unavailable' || err.kind === 'bad_response' || err.kind === 'timeout';
}
