/**
 * How often a connection may be synced without the user present (SPEC section 5), as pure rules.
 * api/test: 4 unattended syncs per rolling 24 hours (the UK Open Banking limit); legacy: nightly;
 * valuation: monthly; a provider whose providers-file entry sets `unattendedSyncsPerDay`: that many
 * per rolling 24 hours, spread over the day, whatever its type.
 */
import { cadenceOf, isValuationType, type CadenceOf, type ProviderType } from '../providers/kinds.ts';
import { DAY_MS, HOUR_MS } from '../time.ts';

export interface Cadence {
  /** Unattended syncs allowed per window. */
  maxUnattended: number;
  windowMs: number;
}

export const UNATTENDED_SYNCS_PER_DAY_OPEN_BANKING = 4;
/**
 * Valuations are published monthly (as of the 1st); one unattended sync per 28 days lets a sync on
 * the VALUATION_SYNC_DAY of every month through, February included.
 */
export const VALUATION_BUDGET_DAYS = 28;
export const VALUATION_SYNC_DAY = 2;
/** The longest budget window of any provider type: how far back budget queries must look. */
export const LONGEST_WINDOW_MS = VALUATION_BUDGET_DAYS * DAY_MS;

export function cadenceFor(provider: ProviderType | CadenceOf): Cadence {
  const { type, unattendedSyncsPerDay } = cadenceOf(provider);
  if (unattendedSyncsPerDay !== undefined) return { maxUnattended: unattendedSyncsPerDay, windowMs: DAY_MS };
  if (type === 'legacy') return { maxUnattended: 1, windowMs: DAY_MS };
  if (isValuationType(type)) return { maxUnattended: 1, windowMs: VALUATION_BUDGET_DAYS * DAY_MS };
  return { maxUnattended: UNATTENDED_SYNCS_PER_DAY_OPEN_BANKING, windowMs: DAY_MS };
}

export interface SyncBudget {
  remaining: number;
  /** When the next unattended sync becomes available again, or null when none is used. */
  resetsAt: string | null;
}

/**
 * What an upstream last said about its own limit for a connection (GoCardless's per-account daily
 * limit, FetchResult.upstreamBudget placed on the domain clock): calls left until `resetsAt`.
 */
export interface UpstreamBudget {
  remaining: number;
  resetsAt: Date;
}

/** The connection's stored upstream budget, or null when the upstream said nothing. */
export const upstreamBudgetOf = (remaining: number | null, resetsAt: Date | null): UpstreamBudget | null =>
  remaining === null || resetsAt === null ? null : { remaining, resetsAt };

/**
 * The unattended budget left, given the start times of the connection's recent unattended syncs
 * and what the upstream last said about its own limit: the smaller of Mooring's budget and the
 * upstream's (until the upstream's window resets; after that the upstream's limit is whole again).
 * When the upstream has none left, the budget frees up no earlier than its reset.
 */
export function syncBudget(type: ProviderType | CadenceOf, unattendedSyncTimes: readonly Date[], now: Date, upstream: UpstreamBudget | null = null): SyncBudget {
  const { maxUnattended, windowMs } = cadenceFor(type);
  const inWindow = unattendedSyncTimes.filter((t) => t.getTime() > now.getTime() - windowMs && t.getTime() <= now.getTime()).sort((a, b) => a.getTime() - b.getTime());
  const oldest = inWindow[0];
  const own: SyncBudget = {
    remaining: Math.max(0, maxUnattended - inWindow.length),
    resetsAt: oldest === undefined ? null : new Date(oldest.getTime() + windowMs).toISOString(),
  };
  if (upstream === null || upstream.resetsAt.getTime() <= now.getTime()) return own;
  const theirs = Math.max(0, upstream.remaining);
  if (theirs > own.remaining) return own;
  if (theirs > 0) return { remaining: theirs, resetsAt: own.resetsAt ?? upstream.resetsAt.toISOString() };
  // Nothing left upstream: the later of the two resets frees the next sync.
  const ownReset = own.remaining === 0 && own.resetsAt !== null ? Date.parse(own.resetsAt) : 0;
  return { remaining: 0, resetsAt: new Date(Math.max(ownReset, upstream.resetsAt.getTime())).toISOString() };
}

/** The upstream's budget once one more sync has used it (the scheduler plans the next sync with this). */
export const afterOneSync = (upstream: UpstreamBudget | null): UpstreamBudget | null =>
  upstream === null ? null : { remaining: Math.max(0, upstream.remaining - 1), resetsAt: upstream.resetsAt };

/** Legacy providers are synced once a night, at this hour (UTC). */
export const LEGACY_SYNC_HOUR_UTC = 2;
/** A legacy provider's next nightly sync is at least this long after the last one. */
export const LEGACY_MIN_GAP_MS = 6 * HOUR_MS;
/** Valuations are synced on VALUATION_SYNC_DAY of each month, at this hour (UTC). */
export const VALUATION_SYNC_HOUR_UTC = 3;
/** The longest month: a valuation sync on its 1st waits for VALUATION_SYNC_DAY of the next. */
const LONGEST_MONTH_DAYS = 31;

/**
 * The longest time `nextScheduledSync` can leave between one scheduled sync and the next (ignoring
 * outages, rate limits and an upstream's own budget): with `unattendedSyncsPerDay` and for api/test,
 * the spacing; legacy: the guard and then up to a day to the next sync hour (a sync at 20:00 UTC is
 * followed by the one at 02:00 UTC the day after next); valuation: from the 1st of a 31-day month to
 * VALUATION_SYNC_DAY of the next, at the sync hour (its budget window, VALUATION_BUDGET_DAYS, is shorter).
 */
export function longestScheduledGapMs(provider: ProviderType | CadenceOf): number {
  const { type, unattendedSyncsPerDay } = cadenceOf(provider);
  if (unattendedSyncsPerDay !== undefined) return DAY_MS / unattendedSyncsPerDay;
  if (type === 'legacy') return LEGACY_MIN_GAP_MS + DAY_MS;
  if (isValuationType(type)) return (LONGEST_MONTH_DAYS + VALUATION_SYNC_DAY - 1) * DAY_MS + VALUATION_SYNC_HOUR_UTC * HOUR_MS;
  const { maxUnattended, windowMs } = cadenceFor(type);
  return windowMs / maxUnattended;
}

/**
 * When the next unattended sync should run after one at `after`: api/test spread their four daily
 * syncs every 6 hours; legacy at the next night's sync hour; valuation early next month. Never before
 * the unattended budget allows (`budgetResetsAt` when the budget is used up).
 */
export function nextScheduledSync(provider: ProviderType | CadenceOf, after: Date, budget: SyncBudget | null = null): Date {
  const { type, unattendedSyncsPerDay } = cadenceOf(provider);
  let next: Date;
  if (unattendedSyncsPerDay !== undefined) {
    next = new Date(after.getTime() + DAY_MS / unattendedSyncsPerDay);
  } else if (type === 'legacy') {
    next = new Date(Date.UTC(after.getUTCFullYear(), after.getUTCMonth(), after.getUTCDate(), LEGACY_SYNC_HOUR_UTC));
    // At least a few hours after the last one, so a sync just before 02:00 does not repeat at once.
    while (next.getTime() <= after.getTime() + LEGACY_MIN_GAP_MS) next = new Date(next.getTime() + DAY_MS);
  } else if (isValuationType(type)) {
    // Early each month, just after the new valuation, so the data never goes stale between syncs.
    next = new Date(Date.UTC(after.getUTCFullYear(), after.getUTCMonth() + 1, VALUATION_SYNC_DAY, VALUATION_SYNC_HOUR_UTC));
  } else {
    const { maxUnattended, windowMs } = cadenceFor(type);
    next = new Date(after.getTime() + windowMs / maxUnattended);
  }
  if (budget !== null && budget.remaining === 0 && budget.resetsAt !== null) {
    const resets = Date.parse(budget.resetsAt);
    if (resets > next.getTime()) next = new Date(resets);
  }
  return next;
}

/**
 * Until when no call for a connection may go to its provider after it answered 429 at `now`
 * (SPEC section 10): the reset the provider gave (`retryAfterMs`, relative, placed on the domain
 * clock), or when it gave none, the next scheduled attempt (`scheduledNext` when it lies ahead,
 * else the next one the cadence gives).
 */
export function rateLimitEnd(type: ProviderType | CadenceOf, now: Date, retryAfterMs: number | undefined, scheduledNext: Date | null): Date {
  if (retryAfterMs !== undefined) return new Date(now.getTime() + retryAfterMs);
  if (scheduledNext !== null && scheduledNext.getTime() > now.getTime()) return scheduledNext;
  return nextScheduledSync(type, now);
}
