/**
 * How a sandbox bank behaves for each sandbox username (SPEC section 7), and the decision each
 * sync gets. A "sync" is counted on the bank side by the call that lists a customer's accounts
 * (Open Banking `GET /aisp/accounts`, legacy `GET /portfolio`, valuation `GET …/valuation`);
 * the other calls of that sync (balances, transactions) share its number.
 */
export const SANDBOX_USERNAMES = [
  'user_ok',
  'user_partial',
  'user_flaky',
  'user_mfa',
  'user_revoked',
  'user_stale',
  'user_slow',
  'user_ratelimited',
  'user_expired',
  'user_throttled',
] as const;
export type SandboxUsername = (typeof SANDBOX_USERNAMES)[number];

export const isSandboxUsername = (s: string): s is SandboxUsername => (SANDBOX_USERNAMES as readonly string[]).includes(s);

/** An unknown username behaves like `user_ok`. */
export const behaviourFor = (username: string): SandboxUsername => {
  const u = username.trim().toLowerCase();
  return isSandboxUsername(u) ? u : 'user_ok';
};

/** The `Retry-After` (seconds) a sandbox bank sends with its 429 for `user_ratelimited`. */
export const RATE_LIMIT_RETRY_AFTER_SECONDS = 3600;

/**
 * `user_throttled` (Open Banking banks): from the second sync on, the bank answers the accounts list,
 * the balances and the first account's transactions, then the second account's transactions with 429
 * (a limit met part-way through a sync). Its transactions come one to a page, so that the first
 * account's pages are still being read when the second account's 429 comes.
 */
export const THROTTLED_TRANSACTIONS_PAGE_SIZE = 1;
export const throttlesAccount = (behaviour: string | null, syncNumber: number, accountIndex: number): boolean =>
  behaviour === 'user_throttled' && syncNumber >= 2 && accountIndex >= 1;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits as long as the behaviour makes a provider call take (`slowCallMs` for `user_slow`). */
export async function behaviourDelay(behaviour: string | null, slowCallMs: number): Promise<void> {
  if (behaviour === 'user_slow') await sleep(slowCallMs);
}

export const SYNC_OUTCOMES = ['ok', 'partial', 'provider_error', 'mfa_required', 'revoked', 'rate_limited', 'expired'] as const;
export type SandboxSyncOutcome = (typeof SYNC_OUTCOMES)[number];

/**
 * What the bank does with sync number `syncNumber` (1 for the first accounts-list call of a consent)
 * of a customer with this behaviour. `attended`: the request carried the customer-present signal.
 */
export function syncOutcome(behaviour: string | null, syncNumber: number, attended: boolean): SandboxSyncOutcome {
  switch (behaviour) {
    case 'user_partial':
      return 'partial';
    case 'user_flaky':
      // The first sync (the one a connect journey runs) succeeds; every second one fails.
      return syncNumber % 2 === 0 ? 'provider_error' : 'ok';
    case 'user_mfa':
      return attended ? 'ok' : 'mfa_required';
    case 'user_revoked':
      return syncNumber >= 2 ? 'revoked' : 'ok';
    case 'user_expired':
      // The first sync succeeds; from the second on, the bank has ended the consent early (expired
      // at the bank before the date it was granted until).
      return syncNumber >= 2 ? 'expired' : 'ok';
    case 'user_ratelimited':
      // The first sync succeeds; from the second on, the bank answers 429 (RATE_LIMIT_RETRY_AFTER_SECONDS).
      return syncNumber >= 2 ? 'rate_limited' : 'ok';
    default:
      return 'ok';
  }
}

/** The bank's as-of time for the data it serves now: `user_stale` stays at the day of connection. */
export const dataAsOf = (behaviour: string | null, authorisedAt: Date, now: Date): Date =>
  behaviour === 'user_stale' ? authorisedAt : now;
