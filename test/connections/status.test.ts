import { afterEach, describe, expect, it, vi } from 'vitest';
import { CONSENT_DAYS, PROVIDER_TYPES, type ProviderType } from '../../src/providers/kinds.ts';
import {
  CONNECTION_ERRORS,
  CONNECTION_STATUSES,
  ESCALATE_AFTER_FAILURES,
  ESCALATE_AFTER_HOURS,
  EXTENDED_STATUSES,
  FETCH_STATUSES,
  REMEDIATION_ACTIONS,
  STALE_AFTER_HOURS,
  consentExpiry,
  describeConnection,
  isAttemptFailure,
  isRateLimited,
  isConsentExpired,
  isStale,
  latestRequestableExpiry,
  nextLastUpdated,
  nextTimeDrivenChange,
  requestedExpiryProblem,
  retrievedData,
  staleAfterMs,
  upstreamConsentExpiry,
  type ConnectionFacts,
  type CountedFetchStatus,
  type FetchStatus,
} from '../../src/connections/status.ts';

const MS = 1;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = new Date('2025-06-15T12:00:00.000Z');
const at = (offsetMs: number): Date => new Date(NOW.getTime() + offsetMs);

/** A healthy api connection: synced an hour ago, consent valid for another 80 days. */
function facts(overrides: Partial<ConnectionFacts> = {}): ConnectionFacts {
  return {
    providerName: 'Nationwide Open Banking',
    providerType: 'api',
    retired: false,
    tppConsent: false,
    expiredUpstream: false,
    renewsConsentAtProvider: false,
    connectedOn: at(-10 * DAY),
    lastUpdated: at(-1 * HOUR),
    expiresAt: at(80 * DAY),
    lastFetchStatus: 'success',
    consecutiveFailures: 0,
    stateSince: null,
    nextSyncAt: at(4 * HOUR),
    rateLimitedUntil: null,
    ...overrides,
  };
}

/** Facts for a connection whose last finished sync ended with `status`, failing `n` times in a row. */
const failing = (status: Exclude<CountedFetchStatus, 'success'>, n = 1, overrides: Partial<ConnectionFacts> = {}): Partial<ConnectionFacts> => ({
  lastFetchStatus: status,
  consecutiveFailures: n,
  stateSince: at(-1 * HOUR),
  ...overrides,
});

const stale = (type: ProviderType = 'api'): Partial<ConnectionFacts> => ({
  providerType: type,
  lastUpdated: at(-staleAfterMs(type) - 1),
});

const describeAt = (overrides: Partial<ConnectionFacts>, now = NOW) => describeConnection(facts(overrides), now);

describe('state vocabularies', () => {
  it('lists each state once, with the exact wire values', () => {
    expect(CONNECTION_STATUSES).toEqual(['ok', 'error', 'never']);
    expect(CONNECTION_ERRORS).toEqual(['resync', 'sync_error', 'sync_partial', 'mfa_required', 'credentials_error']);
    expect(FETCH_STATUSES).toEqual(['success', 'error', 'partial', 'mfa-required', 'credentials-error', 'rate-limited']);
    expect(REMEDIATION_ACTIONS).toEqual(['none', 'wait', 'sync', 'reauth', 'reconsent', 'refresh', 'reconnect']);
    expect(EXTENDED_STATUSES).toEqual(['expired']);
  });

  it('sets consent at 90 days and escalation at 3 failures or 48 hours', () => {
    expect(CONSENT_DAYS).toBe(90);
    expect(ESCALATE_AFTER_FAILURES).toBe(3);
    expect(ESCALATE_AFTER_HOURS).toBe(48);
  });

  it.each([
    ['api', 48],
    ['test', 48],
    ['legacy', 72],
    ['zoopla', 45 * 24],
    ['mouseprice', 45 * 24],
    ['autotrader', 45 * 24],
  ] as const)('gives %s connections a staleness window of %i hours', (type, hours) => {
    expect(STALE_AFTER_HOURS[type]).toBe(hours);
    expect(staleAfterMs(type)).toBe(hours * HOUR);
  });

  it('has a staleness window for every provider type', () => {
    expect(Object.keys(STALE_AFTER_HOURS).sort()).toEqual([...PROVIDER_TYPES].sort());
  });
});

describe('rule 1: a retired provider', () => {
  it('is never, with no error, and asks the user to connect a different provider', () => {
    const s = describeAt({ retired: true });
    expect(s.status).toBe('never');
    expect(s.error).toBeNull();
    expect(s.extendedStatus).toBeNull();
    expect(s.remediation).toEqual({ action: 'reconnect', reason: expect.stringContaining('Nationwide Open Banking') });
    expect(s.remediation.reason).toMatch(/permanently removed/);
  });

  it.each<[string, Partial<ConnectionFacts>]>([
    ['expired consent', { expiresAt: at(-1 * DAY) }],
    ['a credentials-error sync', failing('credentials-error')],
    ['an mfa-required sync', failing('mfa-required')],
    ['an error sync', failing('error', 5)],
    ['a partial sync', failing('partial')],
    ['stale data', stale()],
    ['a legacy provider with stale data', stale('legacy')],
  ])('wins over %s', (_label, overrides) => {
    const s = describeAt({ ...overrides, retired: true });
    expect(s.status).toBe('never');
    expect(s.error).toBeNull();
    expect(s.remediation.action).toBe('reconnect');
  });

  it('still reports lapsed consent in extendedStatus, which describes consent rather than the winning rule', () => {
    expect(describeAt({ retired: true, expiresAt: at(-1) }).extendedStatus).toBe('expired');
  });
});

describe('rule 2: expired consent', () => {
  it('is a credentials_error marked expired', () => {
    const s = describeAt({ expiresAt: at(-1 * DAY) });
    expect(s).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired' });
  });

  it('has lapsed at exactly expiresAt', () => {
    expect(describeAt({ expiresAt: NOW }).extendedStatus).toBe('expired');
    expect(isConsentExpired(NOW, NOW)).toBe(true);
  });

  it('has not lapsed one millisecond before expiresAt', () => {
    const s = describeAt({ expiresAt: at(1 * MS) });
    expect(s).toMatchObject({ status: 'ok', error: null, extendedStatus: null });
    expect(isConsentExpired(at(1), NOW)).toBe(false);
  });

  it('an upstream that says the consent expired dates it by what it says, never later than the sync', () => {
    expect(upstreamConsentExpiry(at(-3 * DAY), NOW)).toEqual(at(-3 * DAY));
    expect(upstreamConsentExpiry(NOW, NOW)).toEqual(NOW);
    // A date after the sync (the bank ended it before the date it granted), none, or garbage: the sync's time.
    expect(upstreamConsentExpiry(at(60 * DAY), NOW)).toEqual(NOW);
    expect(upstreamConsentExpiry(undefined, NOW)).toEqual(NOW);
    expect(upstreamConsentExpiry(new Date(Number.NaN), NOW)).toEqual(NOW);
    expect(describeAt({ expiresAt: upstreamConsentExpiry(at(60 * DAY), NOW) })).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired' });
  });

  it('never lapses when expiresAt is null, however far time moves', () => {
    const farFuture = at(10 * 365 * DAY);
    const s = describeConnection(facts({ expiresAt: null, lastUpdated: at(10 * 365 * DAY - HOUR) }), farFuture);
    expect(s).toMatchObject({ status: 'ok', extendedStatus: null });
    expect(isConsentExpired(null, farFuture)).toBe(false);
  });

  it.each<[string, Partial<ConnectionFacts>]>([
    ['a credentials-error sync', failing('credentials-error')],
    ['an mfa-required sync', failing('mfa-required')],
    ['an error sync', failing('error', 5, { stateSince: at(-10 * DAY) })],
    ['a partial sync', failing('partial')],
    ['stale data', stale()],
    ['a successful sync', { lastFetchStatus: 'success' }],
  ])('wins over %s', (_label, overrides) => {
    const s = describeAt({ ...overrides, expiresAt: at(-1) });
    expect(s).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired' });
    expect(s.remediation.action).toBe('reauth');
  });

  it.each<[ProviderType, boolean, string]>([
    ['api', true, 'reconsent'],
    ['api', false, 'reauth'],
    ['test', true, 'reconsent'],
    ['test', false, 'reauth'],
    ['legacy', true, 'reconsent'],
    ['legacy', false, 'reauth'],
    ['zoopla', true, 'reconsent'],
    ['mouseprice', false, 'reauth'],
  ])('asks a %s connection with tppConsent %s for %s', (providerType, tppConsent, action) => {
    const s = describeAt({ providerType, tppConsent, expiresAt: at(-1) });
    expect(s.remediation.action).toBe(action);
    expect(s.remediation.retryAfter).toBeUndefined();
  });

  it('explains when consent expired and what renewing it involves', () => {
    const s = describeAt({ providerName: 'Modelo Open Banking Mock', tppConsent: true, expiresAt: at(-1 * DAY) });
    expect(s.remediation.reason).toContain('Modelo Open Banking Mock');
    expect(s.remediation.reason).toContain(at(-1 * DAY).toISOString());
    expect(s.remediation.reason).toMatch(/reconsent journey/);
  });

  it.each<[boolean, boolean, string]>([
    // The provider ended the consent and reconsent would only move Mooring's date (Open Banking tppConsent): reauth.
    [true, false, 'reauth'],
    // The provider ended it, and reconsent is a new agreement there (Enable Banking, GoCardless): reconsent still renews it.
    [true, true, 'reconsent'],
    [false, false, 'reconsent'],
    [false, true, 'reconsent'],
  ])('a tppConsent connection whose provider ended the consent (%s), renewing at the provider %s: %s', (expiredUpstream, renewsConsentAtProvider, action) => {
    const s = describeAt({ providerName: 'Modelo Open Banking Mock', tppConsent: true, expiredUpstream, renewsConsentAtProvider, expiresAt: at(-1 * HOUR) });
    expect(s).toMatchObject({ status: 'error', error: 'credentials_error', extendedStatus: 'expired', remediation: { action } });
    if (action === 'reauth') expect(s.remediation.reason).toMatch(/ended the consent itself.*reauth|reauth.*ended the consent itself/);
  });
});

describe('rules 3 to 6: the last finished sync', () => {
  it.each<[CountedFetchStatus, string]>([
    ['credentials-error', 'credentials_error'],
    ['mfa-required', 'mfa_required'],
    ['error', 'sync_error'],
    ['partial', 'sync_partial'],
  ])('maps fetch status %s to error %s, not marked expired', (status, error) => {
    expect(describeAt(failing(status as Exclude<CountedFetchStatus, 'success'>))).toEqual(
      expect.objectContaining({ status: 'error', error, extendedStatus: null }),
    );
  });

  it.each<[Exclude<CountedFetchStatus, 'success'>, string]>([
    ['credentials-error', 'credentials_error'],
    ['mfa-required', 'mfa_required'],
    ['error', 'sync_error'],
    ['partial', 'sync_partial'],
  ])('reports %s rather than resync when the data is also stale', (status, error) => {
    expect(describeAt({ ...stale(), ...failing(status) }).error).toBe(error);
  });

  it('reports a sync failure even when the failed sync is the first and there is no data yet', () => {
    expect(describeAt({ lastUpdated: null, ...failing('error') }).error).toBe('sync_error');
  });

  it('returns the connection to ok at once when a successful sync follows errors', () => {
    const s = describeAt({ lastFetchStatus: 'success', consecutiveFailures: 0, lastUpdated: at(-1 * MS), stateSince: at(-30 * DAY) });
    expect(s).toMatchObject({ status: 'ok', error: null, extendedStatus: null });
    expect(s.remediation.action).toBe('none');
  });
});

describe('rule 7: stale data', () => {
  it.each(PROVIDER_TYPES.map((t) => [t, STALE_AFTER_HOURS[t]] as const))(
    'keeps a %s connection ok at exactly %i hours since its data, and resync one millisecond later',
    (providerType, hours) => {
      const lastUpdated = at(-hours * HOUR);
      expect(describeAt({ providerType, lastUpdated }).status).toBe('ok');
      expect(isStale(providerType, lastUpdated, at(-400 * DAY), NOW)).toBe(false);
      const later = at(1 * MS);
      expect(describeConnection(facts({ providerType, lastUpdated }), later)).toMatchObject({ status: 'error', error: 'resync', extendedStatus: null });
      expect(isStale(providerType, lastUpdated, at(-400 * DAY), later)).toBe(true);
    },
  );

  it('measures from connectedOn while no data has been retrieved', () => {
    const connectedOn = at(-48 * HOUR);
    expect(describeAt({ lastUpdated: null, lastFetchStatus: null, connectedOn }).status).toBe('ok');
    expect(describeConnection(facts({ lastUpdated: null, lastFetchStatus: null, connectedOn }), at(1)).error).toBe('resync');
  });

  it('measures from lastUpdated, not connectedOn, once data exists', () => {
    expect(describeAt({ connectedOn: at(-400 * DAY), lastUpdated: at(-47 * HOUR) }).status).toBe('ok');
  });

  it('treats a brand-new connection with no finished sync as ok', () => {
    expect(describeAt({ connectedOn: at(-1 * MS), lastUpdated: null, lastFetchStatus: null })).toMatchObject({ status: 'ok', error: null });
  });

  it('treats a successful sync that brought old data as stale', () => {
    expect(describeAt({ lastFetchStatus: 'success', lastUpdated: at(-49 * HOUR) }).error).toBe('resync');
  });

  it('keeps valuation data of a month ago ok', () => {
    expect(describeAt({ providerType: 'zoopla', lastUpdated: at(-30 * DAY) }).status).toBe('ok');
  });
});

describe('rule 8: ok', () => {
  it('is ok with no error and nothing to do', () => {
    const s = describeAt({});
    expect(s).toEqual({ status: 'ok', error: null, extendedStatus: null, remediation: { action: 'none', reason: expect.any(String) } });
    expect(s.remediation.reason).toContain('Nationwide Open Banking');
    expect(s.remediation.reason).toContain(at(-1 * HOUR).toISOString());
  });
});

describe('remediation: resync', () => {
  /** Data that went stale `inStateMs` before NOW for the given type. */
  const staleFor = (type: ProviderType, inStateMs: number): Partial<ConnectionFacts> => ({
    providerType: type,
    lastUpdated: at(-staleAfterMs(type) - inStateMs),
  });

  it('asks for a sync while the data has been stale for less than 48 hours', () => {
    const s = describeAt(staleFor('api', 48 * HOUR - 1));
    expect(s.remediation).toEqual({ action: 'sync', reason: expect.stringMatching(/^Nationwide Open Banking has not returned new data since .*trigger a sync\.$/) });
    expect(s.remediation.reason).toContain('48 hours');
  });

  it.each<[ProviderType, boolean, string]>([
    ['api', false, 'reauth'],
    ['api', true, 'reauth'],
    ['test', true, 'reauth'],
    ['legacy', false, 'refresh'],
    ['legacy', true, 'refresh'],
    ['zoopla', true, 'reconsent'],
    ['mouseprice', true, 'reconsent'],
    ['autotrader', false, 'reauth'],
  ])('escalates a %s connection (tppConsent %s) to %s after exactly 48 hours stale', (providerType, tppConsent, action) => {
    const s = describeAt({ ...staleFor(providerType, 48 * HOUR), tppConsent });
    expect(s.error).toBe('resync');
    expect(s.remediation.action).toBe(action);
    expect(s.remediation.reason).toContain(`${action} journey`);
  });

  it('dates the resync state from when the window ran out, when stateSince is unknown', () => {
    expect(describeAt({ ...staleFor('legacy', 47 * HOUR), stateSince: null }).remediation.action).toBe('sync');
    expect(describeAt({ ...staleFor('legacy', 48 * HOUR), stateSince: null }).remediation.action).toBe('refresh');
  });

  it('uses a recorded stateSince later than the window running out', () => {
    const s = describeAt({ ...staleFor('api', 10 * DAY), stateSince: at(-48 * HOUR + 1) });
    expect(s.remediation.action).toBe('sync');
    expect(describeAt({ ...staleFor('api', 10 * DAY), stateSince: at(-48 * HOUR) }).remediation.action).toBe('reauth');
  });

  it('ignores a recorded stateSince earlier than the data could have gone stale', () => {
    expect(describeAt({ ...staleFor('api', 1 * HOUR), stateSince: at(-30 * DAY) }).remediation.action).toBe('sync');
  });

  it('escalates after 3 consecutive failures too', () => {
    expect(describeAt({ ...staleFor('api', 1 * HOUR), lastFetchStatus: null, consecutiveFailures: 3 }).remediation.action).toBe('reauth');
    expect(describeAt({ ...staleFor('api', 1 * HOUR), lastFetchStatus: null, consecutiveFailures: 2 }).remediation.action).toBe('sync');
  });

  it('tells a legacy user why a refresh helps', () => {
    const s = describeAt({ ...staleFor('legacy', 3 * DAY), providerName: 'Aviva' });
    expect(s.remediation.reason).toMatch(/^Aviva has not returned new data since .*refresh journey, where the user can complete multi-factor authentication\.$/);
    expect(s.remediation.reason).toContain('3 days');
  });

  it('says when no data was ever retrieved', () => {
    const s = describeAt({ lastUpdated: null, lastFetchStatus: null, connectedOn: at(-49 * HOUR) });
    expect(s.remediation.reason).toContain('has not returned any data since it was connected');
  });
});

describe('remediation: sync_error', () => {
  it('waits for the next scheduled sync, giving it as retryAfter', () => {
    const s = describeAt(failing('error', 1));
    expect(s.remediation).toEqual({ action: 'wait', reason: expect.any(String), retryAfter: at(4 * HOUR).toISOString() });
    expect(s.remediation.reason).toBe(
      `The last sync of Nationwide Open Banking failed; Mooring retries automatically at ${at(4 * HOUR).toISOString()} (or trigger a sync to retry now).`,
    );
  });

  it('waits without retryAfter when no sync is scheduled, and says to trigger one', () => {
    const s = describeAt(failing('error', 1, { nextSyncAt: null }));
    expect(s.remediation.action).toBe('wait');
    expect(s.remediation).not.toHaveProperty('retryAfter');
    expect(s.remediation.reason).toMatch(/no automatic retry is scheduled/);
  });

  it.each([
    [2, 48 * HOUR - 1, 'wait'],
    [3, 0, 'reauth'],
    [2, 48 * HOUR, 'reauth'],
    [4, 100 * HOUR, 'reauth'],
  ])('after %i failures and %i ms in the state, answers %s', (n, inStateMs, action) => {
    expect(describeAt(failing('error', n, { stateSince: at(-inStateMs) })).remediation.action).toBe(action);
  });

  it('treats an unknown stateSince as now, so only the failure count can escalate', () => {
    expect(describeAt(failing('error', 2, { stateSince: null })).remediation.action).toBe('wait');
    expect(describeAt(failing('error', 3, { stateSince: null })).remediation.action).toBe('reauth');
  });

  it.each<[ProviderType, boolean, string]>([
    ['api', true, 'reconsent'],
    ['api', false, 'reauth'],
    ['test', true, 'reconsent'],
    ['test', false, 'reauth'],
    ['legacy', true, 'refresh'],
    ['legacy', false, 'refresh'],
    ['zoopla', true, 'reconsent'],
    ['mouseprice', true, 'reconsent'],
    ['autotrader', false, 'reauth'],
  ])('escalates a %s connection with tppConsent %s to %s', (providerType, tppConsent, action) => {
    const s = describeAt({ providerType, tppConsent, ...failing('error', 3) });
    expect(s.remediation).toEqual({ action, reason: expect.stringContaining(`${action} journey`) });
  });

  it('names the failure count that escalated it', () => {
    const s = describeAt({ providerName: 'Handelsbanken', ...failing('error', 4) });
    expect(s.remediation.reason).toBe('Handelsbanken has failed to sync 4 times in a row; take the user through a reauth journey.');
  });

  it('names how long it has been failing when time escalated it', () => {
    const s = describeAt({ providerName: 'Handelsbanken', ...failing('error', 1, { stateSince: at(-50 * HOUR) }) });
    expect(s.remediation.reason).toBe('Handelsbanken has failed to sync for 50 hours; take the user through a reauth journey.');
  });
});

describe('remediation: sync_partial', () => {
  it('waits for the next scheduled sync', () => {
    const s = describeAt(failing('partial', 1));
    expect(s.remediation).toEqual({ action: 'wait', reason: expect.stringContaining('only part of the data'), retryAfter: at(4 * HOUR).toISOString() });
  });

  it.each([
    [2, 48 * HOUR - 1, 'wait'],
    [3, 0, 'sync'],
    [1, 48 * HOUR, 'sync'],
  ])('after %i failures and %i ms in the state, answers %s', (n, inStateMs, action) => {
    expect(describeAt(failing('partial', n, { stateSince: at(-inStateMs) })).remediation.action).toBe(action);
  });

  it.each(PROVIDER_TYPES)('escalates a %s connection to a sync, whatever its consent model', (providerType) => {
    for (const tppConsent of [true, false]) {
      const s = describeAt({ providerType, tppConsent, ...failing('partial', 3) });
      expect(s.remediation).toEqual({ action: 'sync', reason: expect.stringContaining('trigger a sync') });
    }
  });
});

describe('remediation: mfa_required and credentials_error', () => {
  it('asks for a refresh journey when a legacy provider wants a one-time code', () => {
    expect(describeAt({ providerType: 'legacy', providerName: 'Aviva', ...failing('mfa-required') }).remediation).toEqual({
      action: 'refresh',
      reason: 'Aviva asked for a one-time code; take the user through a refresh journey.',
    });
  });

  it.each(['api', 'test'] as const)('asks for a reauth journey when a %s bank wants strong customer authentication again', (providerType) => {
    expect(describeAt({ providerType, ...failing('mfa-required') }).remediation).toEqual({
      action: 'reauth',
      reason: 'Nationwide Open Banking asked for strong customer authentication again; take the user through a reauth journey.',
    });
  });

  it.each(PROVIDER_TYPES)('never escalates mfa_required for %s, however long it persists', (providerType) => {
    const s = describeAt({ providerType, tppConsent: true, ...failing('mfa-required', 10, { stateSince: at(-30 * DAY) }) });
    expect(s.remediation.action).toBe(providerType === 'legacy' ? 'refresh' : 'reauth');
  });

  it.each(PROVIDER_TYPES)('asks for reauth on credentials_error for %s, even with tppConsent', (providerType) => {
    const s = describeAt({ providerType, tppConsent: true, ...failing('credentials-error', 10, { stateSince: at(-30 * DAY) }) });
    expect(s.remediation.action).toBe('reauth');
    expect(s.remediation.reason).toMatch(/changed their credentials or revoked access\); take the user through a reauth journey\.$/);
  });
});

describe('reasons', () => {
  it.each<[string, Partial<ConnectionFacts>]>([
    ['ok', {}],
    ['never', { retired: true }],
    ['expired', { expiresAt: at(-1) }],
    ['credentials_error', failing('credentials-error')],
    ['mfa_required', failing('mfa-required')],
    ['sync_error', failing('error')],
    ['sync_error escalated', failing('error', 3)],
    ['sync_partial', failing('partial')],
    ['sync_partial escalated', failing('partial', 3)],
    ['resync', stale()],
    ['resync escalated', { lastUpdated: at(-10 * DAY) }],
  ])('name the provider in a full sentence for %s', (_label, overrides) => {
    const { reason } = describeAt({ ...overrides, providerName: 'Société Générale' }).remediation;
    expect(reason).toContain('Société Générale');
    expect(reason).toMatch(/\.$/);
  });
});

describe('purity', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('depends only on the facts and the given now, not the system clock', () => {
    const input = facts(failing('error', 1));
    const first = describeConnection(input, NOW);
    vi.useFakeTimers({ now: at(400 * DAY) });
    expect(describeConnection(input, NOW)).toEqual(first);
  });

  it('does not change the facts it is given', () => {
    const input = facts({ ...stale(), stateSince: at(-1 * DAY) });
    const copy = structuredClone(input);
    describeConnection(input, NOW);
    expect(input).toEqual(copy);
  });
});

describe('consentExpiry', () => {
  it('adds the consent length in days to the consent time', () => {
    expect(consentExpiry(NOW, CONSENT_DAYS)).toEqual(at(90 * DAY));
  });

  it('answers null for providers that set no consent length', () => {
    expect(consentExpiry(NOW, null)).toBeNull();
  });
});

describe('fetch status helpers', () => {
  it.each<[FetchStatus, boolean, boolean]>([
    ['success', false, true],
    ['partial', true, true],
    ['error', true, false],
    ['mfa-required', true, false],
    ['credentials-error', true, false],
    ['rate-limited', false, false],
  ])('%s: counts as a failed attempt %s, retrieved data %s', (status, failure, retrieved) => {
    expect(isAttemptFailure(status)).toBe(failure);
    expect(retrievedData(status)).toBe(retrieved);
  });
});

describe('a provider\'s 429 (rate-limited)', () => {
  const until = at(2 * HOUR);

  it('never changes status or error, and turns advice to sync or do nothing into wait until the reset', () => {
    const ok = describeAt({ rateLimitedUntil: until });
    expect(ok).toMatchObject({ status: 'ok', error: null, remediation: { action: 'wait', retryAfter: until.toISOString() } });
    expect(ok.remediation.reason).toContain('Nationwide Open Banking');
    const resync = describeAt({ ...stale(), rateLimitedUntil: until });
    expect(resync).toMatchObject({ status: 'error', error: 'resync', remediation: { action: 'wait', retryAfter: until.toISOString() } });
  });

  it('leaves journeys and sync-error advice alone, and ends at the reset', () => {
    expect(describeAt({ ...failing('credentials-error'), rateLimitedUntil: until }).remediation.action).toBe('reauth');
    expect(describeAt({ ...failing('error'), rateLimitedUntil: until }).remediation).toMatchObject({ action: 'wait', retryAfter: at(4 * HOUR).toISOString() });
    expect(describeAt({ rateLimitedUntil: until }, until).remediation.action).toBe('none');
    expect(isRateLimited(until, at(2 * HOUR - 1))).toBe(true);
    expect(isRateLimited(until, until)).toBe(false);
    expect(isRateLimited(null, NOW)).toBe(false);
  });
});

describe('nextLastUpdated', () => {
  const retrievedAt = NOW;

  it('uses the retrieval time when the provider gives no as-of time', () => {
    expect(nextLastUpdated(at(-1 * DAY), null, retrievedAt)).toEqual(retrievedAt);
  });

  it('uses the retrieval time when the provider gives an invalid as-of time', () => {
    expect(nextLastUpdated(null, new Date('garbage'), retrievedAt)).toEqual(retrievedAt);
  });

  it("uses the provider's as-of time when it is earlier than the retrieval", () => {
    expect(nextLastUpdated(at(-2 * DAY), at(-3 * HOUR), retrievedAt)).toEqual(at(-3 * HOUR));
  });

  it('clamps an as-of time later than the retrieval to the retrieval time', () => {
    expect(nextLastUpdated(at(-1 * DAY), at(1 * HOUR), retrievedAt)).toEqual(retrievedAt);
  });

  it('never moves backwards when the as-of time is older than the previous value', () => {
    expect(nextLastUpdated(at(-1 * HOUR), at(-5 * DAY), retrievedAt)).toEqual(at(-1 * HOUR));
  });

  it('never moves backwards even with no as-of time', () => {
    expect(nextLastUpdated(at(1 * HOUR), null, retrievedAt)).toEqual(at(1 * HOUR));
  });

  it('takes the as-of time on the first retrieval', () => {
    expect(nextLastUpdated(null, at(-30 * DAY), retrievedAt)).toEqual(at(-30 * DAY));
  });

  it('returns a fresh Date, so callers cannot mutate the inputs through it', () => {
    const previous = at(1 * HOUR);
    expect(nextLastUpdated(previous, null, retrievedAt)).not.toBe(previous);
  });
});

describe('requestedExpiryProblem', () => {
  it('accepts an expiry in the future up to exactly the provider consent length', () => {
    expect(requestedExpiryProblem(at(1 * MS), 90, NOW)).toBeNull();
    expect(requestedExpiryProblem(at(90 * DAY), 90, NOW)).toBeNull();
    expect(latestRequestableExpiry(90, NOW)).toEqual(at(90 * DAY));
  });

  it('refuses now and the past', () => {
    expect(requestedExpiryProblem(NOW, 90, NOW)).toBe('not_in_future');
    expect(requestedExpiryProblem(at(-1 * DAY), 90, NOW)).toBe('not_in_future');
  });

  it("measures the limit by the provider's consent length, not the default 90 days", () => {
    expect(requestedExpiryProblem(at(90 * DAY + 1), 90, NOW)).toBe('beyond_consent_length');
    expect(requestedExpiryProblem(at(31 * DAY), 30, NOW)).toBe('beyond_consent_length');
    expect(requestedExpiryProblem(at(120 * DAY), 180, NOW)).toBeNull();
  });
});

describe('nextTimeDrivenChange', () => {
  it('is the earlier of consent lapsing and the first stale millisecond', () => {
    expect(nextTimeDrivenChange('api', at(10 * HOUR), NOW, NOW, NOW)).toEqual(at(10 * HOUR));
    expect(nextTimeDrivenChange('api', at(90 * DAY), NOW, NOW, NOW)).toEqual(at(48 * HOUR + 1));
    // The instant after it is the first one isStale reports.
    expect(isStale('api', NOW, NOW, at(48 * HOUR + 1))).toBe(true);
  });

  it('ignores moments already past and has no staleness without a provider', () => {
    expect(nextTimeDrivenChange('api', at(-1 * HOUR), at(-49 * HOUR), NOW, NOW)).toBeNull();
    expect(nextTimeDrivenChange(null, null, NOW, NOW, NOW)).toBeNull();
  });
});
