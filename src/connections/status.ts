/**
 * The pure rules of a connection's state (SPEC sections 5 and 6): status, error, consent expiry,
 * freshness and remediation. Plain functions of data and time, with no I/O and no clock of their
 * own: callers pass "now" from the injected domain clock so the sandbox can move time.
 */
import { cadenceOf, isValuationType, type CadenceOf, type ProviderType } from '../providers/kinds.ts';
import { DAY_MS, HOUR_MS } from '../time.ts';

export const CONNECTION_STATUSES = ['ok', 'error', 'never'] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

export const CONNECTION_ERRORS = ['resync', 'sync_error', 'sync_partial', 'mfa_required', 'credentials_error'] as const;
export type ConnectionError = (typeof CONNECTION_ERRORS)[number];

/**
 * A finished sync's fetch status: Moneyhub's five, and beyond Moneyhub `rate-limited` (the
 * provider answered 429: the sync neither failed nor retrieved data, SPEC sections 5 and 10).
 */
export const FETCH_STATUSES = ['success', 'error', 'partial', 'mfa-required', 'credentials-error', 'rate-limited'] as const;
export type FetchStatus = (typeof FETCH_STATUSES)[number];
/**
 * The fetch statuses that say something about the connection. A rate-limited sync is not one: the
 * status rules use the last finished sync that was not rate-limited, so one is never recorded as
 * the connection's last fetch status, failure streak or freshness.
 */
export type CountedFetchStatus = Exclude<FetchStatus, 'rate-limited'>;
export const countsForConnection = (s: FetchStatus): s is CountedFetchStatus => s !== 'rate-limited';

export const REMEDIATION_ACTIONS = ['none', 'wait', 'sync', 'reauth', 'reconsent', 'refresh', 'reconnect'] as const;
export type RemediationAction = (typeof REMEDIATION_ACTIONS)[number];

export const EXTENDED_STATUSES = ['expired'] as const;
export type ExtendedStatus = (typeof EXTENDED_STATUSES)[number];

const VALUATION_STALE_AFTER_HOURS = 45 * 24;

/** How long a connection may go without new data before it needs a resync (SPEC section 5). */
export const STALE_AFTER_HOURS = {
  api: 48,
  test: 48,
  legacy: 72,
  zoopla: VALUATION_STALE_AFTER_HOURS,
  mouseprice: VALUATION_STALE_AFTER_HOURS,
  autotrader: VALUATION_STALE_AFTER_HOURS,
} as const satisfies Record<ProviderType, number>;

/** A recoverable error escalates to a user journey after this many consecutive failed syncs... */
export const ESCALATE_AFTER_FAILURES = 3;
/** ...or after this long in the same state. */
export const ESCALATE_AFTER_HOURS = 48;

export interface ConnectionFacts {
  providerName: string;
  providerType: ProviderType;
  /** The provider's own staleness window from the providers file, when it sets one. */
  staleAfterHours?: number | undefined;
  /** The provider was permanently removed from the catalog. */
  retired: boolean;
  tppConsent: boolean;
  /** The provider itself said the consent had expired (a sync's consent_expired), and no journey has stored a new grant since. */
  expiredUpstream: boolean;
  /** The connection's adapter renews consent with a new agreement at the provider (kinds.ts renewsConsentAtProvider). */
  renewsConsentAtProvider: boolean;
  connectedOn: Date;
  lastUpdated: Date | null;
  expiresAt: Date | null;
  /** Fetch status of the last finished sync that was not rate-limited, or null when none has finished. */
  lastFetchStatus: CountedFetchStatus | null;
  /** Consecutive finished syncs, up to the latest, whose fetch status was not `success`. */
  consecutiveFailures: number;
  /** When the connection entered its current non-ok state; null when unknown. */
  stateSince: Date | null;
  nextSyncAt: Date | null;
  /** Until when the provider asked Mooring not to call it for this connection (its last 429), or null. */
  rateLimitedUntil: Date | null;
}

export interface Remediation {
  action: RemediationAction;
  reason: string;
  /** ISO 8601 time after which waiting should have paid off (the next scheduled sync). */
  retryAfter?: string;
}

export interface ConnectionState {
  status: ConnectionStatus;
  error: ConnectionError | null;
  extendedStatus: ExtendedStatus | null;
  remediation: Remediation;
}

/** Rules 3 to 6: what the last finished sync's fetch status says about the connection. */
const ERROR_FOR_FETCH_STATUS = {
  success: null,
  'credentials-error': 'credentials_error',
  'mfa-required': 'mfa_required',
  error: 'sync_error',
  partial: 'sync_partial',
} as const satisfies Record<CountedFetchStatus, ConnectionError | null>;

/** When consent given at `consentAt` lapses, or null for providers that set no consent length. */
export function consentExpiry(consentAt: Date, consentDays: number | null): Date | null {
  return consentDays === null ? null : new Date(consentAt.getTime() + consentDays * DAY_MS);
}

/** The latest consent expiry a client may ask for now: the provider's consent length from now (SPEC sections 5 and 10). */
export function latestRequestableExpiry(consentDays: number, now: Date): Date {
  return new Date(now.getTime() + consentDays * DAY_MS);
}

export type RequestedExpiryProblem = 'not_in_future' | 'beyond_consent_length';

/**
 * Whether a consent expiry a client asked for (PATCH, an auth request, a journey's
 * `mh:consent.expirationDateTime`) may be used: it must lie in the future and at most the
 * provider's consent length from now. Null when it may.
 */
export function requestedExpiryProblem(requested: Date, consentDays: number, now: Date): RequestedExpiryProblem | null {
  if (requested.getTime() <= now.getTime()) return 'not_in_future';
  if (requested.getTime() > latestRequestableExpiry(consentDays, now).getTime()) return 'beyond_consent_length';
  return null;
}

/**
 * Whether only a new authorisation at the provider (reauth) can renew a connection's consent: the
 * provider itself ended it, and the adapter renews consent only at Mooring (renewsConsentAtProvider
 * false: Open Banking tppConsent), so a reconsent or PATCH would move Mooring's date while the
 * provider goes on refusing. Reconsent and PATCH are refused then, and rule 2 advises reauth.
 */
export function needsReauthAtProvider(c: { expiredUpstream: boolean; renewsConsentAtProvider: boolean }): boolean {
  return c.expiredUpstream && !c.renewsConsentAtProvider;
}

/** Consent that lapses at `expiresAt` is no longer valid from that instant on. */
export function isConsentExpired(expiresAt: Date | null, now: Date): boolean {
  return expiresAt !== null && expiresAt.getTime() <= now.getTime();
}

/**
 * When a consent the upstream says has expired (SPEC section 10) lapsed, for the connection's
 * expiresAt: the time the upstream gives, or `syncAt` (the sync's time) when it gives none or a
 * later one; never later than the sync. The repository never moves expiresAt later than it was.
 */
export function upstreamConsentExpiry(said: Date | undefined, syncAt: Date): Date {
  if (said === undefined || Number.isNaN(said.getTime()) || said.getTime() > syncAt.getTime()) return syncAt;
  return said;
}

const stalenessOf = (facts: ConnectionFacts): CadenceOf => ({ type: facts.providerType, staleAfterHours: facts.staleAfterHours });

/** The provider's staleness window: its providers-file `staleAfterHours`, else its type's. */
export function staleAfterMs(provider: ProviderType | CadenceOf): number {
  const { type, staleAfterHours } = cadenceOf(provider);
  return (staleAfterHours ?? STALE_AFTER_HOURS[type]) * HOUR_MS;
}

/** The instant a connection becomes stale: its staleness window after its last data (or its creation). */
function staleAt(providerType: ProviderType | CadenceOf, lastUpdated: Date | null, connectedOn: Date): Date {
  return new Date((lastUpdated ?? connectedOn).getTime() + staleAfterMs(providerType));
}

/** Rule 7: data older than the window (strictly; exactly at the window is still fresh). */
export function isStale(providerType: ProviderType | CadenceOf, lastUpdated: Date | null, connectedOn: Date, now: Date): boolean {
  return now.getTime() > staleAt(providerType, lastUpdated, connectedOn).getTime();
}

/**
 * The next instant after `now` at which time alone changes a connection's state: its consent
 * lapsing (rule 2) or its data going stale (rule 7, the first millisecond past the window). Null
 * when neither lies ahead; a provider no longer in the catalog has no staleness window.
 */
export function nextTimeDrivenChange(
  providerType: ProviderType | CadenceOf | null, expiresAt: Date | null, lastUpdated: Date | null, connectedOn: Date, now: Date,
): Date | null {
  const candidates = [
    expiresAt?.getTime(),
    providerType === null ? undefined : staleAt(providerType, lastUpdated, connectedOn).getTime() + 1,
  ].filter((t): t is number => t !== undefined && t > now.getTime());
  return candidates.length === 0 ? null : new Date(Math.min(...candidates));
}

/** Whether a finished sync counts towards `consecutiveFailures` (a rate-limited one counts as neither failure nor success). */
export function isAttemptFailure(fetchStatus: FetchStatus): boolean {
  return fetchStatus !== 'success' && fetchStatus !== 'rate-limited';
}

/** Whether the provider's last 429 still forbids calling it for this connection at `now`. */
export function isRateLimited(rateLimitedUntil: Date | null, now: Date): boolean {
  return rateLimitedUntil !== null && rateLimitedUntil.getTime() > now.getTime();
}

/** Whether a finished sync retrieved data, and so may move `lastUpdated`. */
export function retrievedData(fetchStatus: FetchStatus): boolean {
  return fetchStatus === 'success' || fetchStatus === 'partial';
}

/**
 * The new `lastUpdated` after a sync that retrieved data: the provider's as-of time (the
 * retrieval time when it gives none or gives garbage), never later than the retrieval time,
 * never earlier than the previous value.
 */
export function nextLastUpdated(previous: Date | null, asOf: Date | null, retrievedAt: Date): Date {
  const asOfMs = asOf === null || Number.isNaN(asOf.getTime()) ? retrievedAt.getTime() : asOf.getTime();
  const candidateMs = Math.min(asOfMs, retrievedAt.getTime());
  return new Date(previous === null ? candidateMs : Math.max(previous.getTime(), candidateMs));
}

/** Rules 1 to 8 of SPEC section 5, first match wins, with the remediation of SPEC section 6. */
export function describeConnection(facts: ConnectionFacts, now: Date): ConnectionState {
  const state = describeIgnoringRateLimit(facts, now);
  return { ...state, remediation: whileRateLimited(state.remediation, facts, now) };
}

/**
 * A 429 never changes the status or error (SPEC sections 5 and 10), but while it holds a sync
 * cannot help: advice to sync (or nothing to do) becomes `wait` until the provider's reset.
 * Journeys (reauth, refresh, ...) and waits already pointing at a later sync stay as they are.
 */
function whileRateLimited(remediation: Remediation, facts: ConnectionFacts, now: Date): Remediation {
  if (!isRateLimited(facts.rateLimitedUntil, now) || facts.rateLimitedUntil === null) return remediation;
  if (remediation.action !== 'none' && remediation.action !== 'sync') return remediation;
  const until = iso(facts.rateLimitedUntil);
  const reason =
    `${facts.providerName} limited how often Mooring may ask for this connection's data; Mooring does not call it again ` +
    `before ${until}, then syncs automatically.`;
  return { action: 'wait', reason, retryAfter: until };
}

function describeIgnoringRateLimit(facts: ConnectionFacts, now: Date): ConnectionState {
  // Section 3 defines extendedStatus as "consent has lapsed", independent of which rule won,
  // so a retired connection whose consent lapsed still says so.
  const extendedStatus: ExtendedStatus | null = isConsentExpired(facts.expiresAt, now) ? 'expired' : null;
  const name = facts.providerName;

  if (facts.retired) {
    const reason =
      `${name} has been permanently removed from the available providers and can never sync again; ` +
      'ask the user to connect a different provider (data already retrieved stays readable until the connection is deleted).';
    return { status: 'never', error: null, extendedStatus, remediation: { action: 'reconnect', reason } };
  }

  if (facts.expiresAt !== null && extendedStatus === 'expired') {
    const endedUpstream = needsReauthAtProvider(facts);
    const reconsent = facts.tppConsent && !endedUpstream;
    const how = reconsent
      ? 'take the user through a reconsent journey to renew it (no new login at the provider is needed)'
      : endedUpstream
        ? `take the user through a reauth journey: ${name} ended the consent itself, so only a new authorisation at ${name} renews it (a reconsent would not)`
        : `take the user through a reauth journey: ${name} requires the user to log in again to renew consent`;
    const reason = `The user's consent for ${name} expired at ${iso(facts.expiresAt)} and no syncs run until it is renewed; ${how}.`;
    return {
      status: 'error',
      error: 'credentials_error',
      extendedStatus,
      remediation: { action: reconsent ? 'reconsent' : 'reauth', reason },
    };
  }

  const error = facts.lastFetchStatus === null ? null : ERROR_FOR_FETCH_STATUS[facts.lastFetchStatus];
  if (error !== null) {
    return { status: 'error', error, extendedStatus, remediation: remediateSyncOutcome(error, facts, now) };
  }

  if (isStale(stalenessOf(facts), facts.lastUpdated, facts.connectedOn, now)) {
    return { status: 'error', error: 'resync', extendedStatus, remediation: remediateResync(facts, now) };
  }

  const fresh = facts.lastUpdated === null ? 'no data has been retrieved yet' : `its data is as of ${iso(facts.lastUpdated)}`;
  return { status: 'ok', error: null, extendedStatus, remediation: { action: 'none', reason: `${name} is connected and healthy; ${fresh}.` } };
}

function remediateSyncOutcome(error: Exclude<ConnectionError, 'resync'>, facts: ConnectionFacts, now: Date): Remediation {
  const name = facts.providerName;
  const since = facts.stateSince ?? now;
  switch (error) {
    case 'credentials_error': {
      const reason =
        `${name} no longer accepts Mooring's access (the user may have changed their credentials or revoked access); ` +
        'take the user through a reauth journey.';
      return { action: 'reauth', reason };
    }
    case 'mfa_required':
      // Only legacy providers have a refresh journey; a bank asking for strong customer
      // authentication again is answered by logging in at the bank again.
      if (facts.providerType === 'legacy') {
        return { action: 'refresh', reason: `${name} asked for a one-time code; take the user through a refresh journey.` };
      }
      return { action: 'reauth', reason: `${name} asked for strong customer authentication again; take the user through a reauth journey.` };
    case 'sync_error': {
      if (!shouldEscalate(facts.consecutiveFailures, since, now)) return waitForNextSync(facts, `The last sync of ${name} failed`);
      const action = persistentFailureAction(facts, 'sync_error');
      const persisted = persistence(facts.consecutiveFailures, since, now, 'failed to sync');
      return { action, reason: `${name} has ${persisted}; take the user through a ${action} journey.` };
    }
    case 'sync_partial': {
      if (!shouldEscalate(facts.consecutiveFailures, since, now)) {
        return waitForNextSync(facts, `The last sync of ${name} retrieved only part of the data`);
      }
      const persisted = persistence(facts.consecutiveFailures, since, now, 'not returned all of its data');
      return { action: 'sync', reason: `${name} has ${persisted}; trigger a sync to fetch the rest.` };
    }
  }
}

function remediateResync(facts: ConnectionFacts, now: Date): Remediation {
  const name = facts.providerName;
  // A connection drifts into resync as time passes, so nothing records the moment; it is exactly
  // when the staleness window ran out, and it cannot have been stale any earlier than that.
  const becameStaleMs = staleAt(stalenessOf(facts), facts.lastUpdated, facts.connectedOn).getTime();
  const since = new Date(Math.max(facts.stateSince?.getTime() ?? becameStaleMs, becameStaleMs));
  const noData =
    facts.lastUpdated === null
      ? `${name} has not returned any data since it was connected at ${iso(facts.connectedOn)}`
      : `${name} has not returned new data since ${iso(facts.lastUpdated)}`;
  if (!shouldEscalate(facts.consecutiveFailures, since, now)) {
    const window = formatDuration(staleAfterMs(stalenessOf(facts)));
    return { action: 'sync', reason: `${noData} (more than ${window} ago), most likely because it needs the user present; trigger a sync.` };
  }
  const action = persistentFailureAction(facts, 'resync');
  const why = facts.providerType === 'legacy' ? ', where the user can complete multi-factor authentication' : '';
  const outOfDate = formatDuration(now.getTime() - since.getTime());
  return { action, reason: `${noData}; it has been out of date for ${outOfDate}, so take the user through a ${action} journey${why}.` };
}

function shouldEscalate(consecutiveFailures: number, since: Date, now: Date): boolean {
  const inStateMs = now.getTime() - since.getTime();
  return consecutiveFailures >= ESCALATE_AFTER_FAILURES || inStateMs >= ESCALATE_AFTER_HOURS * HOUR_MS;
}

/**
 * The journey once syncing alone has not helped. Legacy providers are repaired by a refresh
 * journey; api/test providers need reauth, or for sync errors a reconsent when only the client's
 * consent is needed. Valuation providers escalate like api, but have no bank login to redo, so
 * any persistent failure means renewing access: reconsent when `tppConsent`, else reauth.
 */
function persistentFailureAction(facts: ConnectionFacts, error: 'resync' | 'sync_error'): RemediationAction {
  if (facts.providerType === 'legacy') return 'refresh';
  if (isValuationType(facts.providerType) || error === 'sync_error') return facts.tppConsent ? 'reconsent' : 'reauth';
  return 'reauth';
}

/** `wait`, pointing at the next scheduled sync; the partial row waits for the same retry as sync_error. */
function waitForNextSync(facts: ConnectionFacts, what: string): Remediation {
  if (facts.nextSyncAt === null) {
    return { action: 'wait', reason: `${what}; no automatic retry is scheduled yet, so trigger a sync to retry now.` };
  }
  const retryAfter = iso(facts.nextSyncAt);
  return { action: 'wait', reason: `${what}; Mooring retries automatically at ${retryAfter} (or trigger a sync to retry now).`, retryAfter };
}

/** "failed to sync 3 times in a row" or "failed to sync for 2 days", whichever trigger fired. */
function persistence(consecutiveFailures: number, since: Date, now: Date, what: string): string {
  if (consecutiveFailures >= ESCALATE_AFTER_FAILURES) return `${what} ${consecutiveFailures} times in a row`;
  return `${what} for ${formatDuration(now.getTime() - since.getTime())}`;
}

/** Whole hours up to three days, whole days beyond. */
function formatDuration(ms: number): string {
  const hours = Math.floor(ms / HOUR_MS);
  if (hours < 72) return hours === 1 ? '1 hour' : `${hours} hours`;
  return `${Math.floor(hours / 24)} days`;
}

const iso = (d: Date): string => d.toISOString();
