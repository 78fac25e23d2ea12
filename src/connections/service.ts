/** Connections: reading them with a truthful status, renewing consent, and deleting them. */
import type { Clock } from '../clock.ts';
import { badRequest, notFound, type AppError } from '../errors.ts';
import { isConnectionId, isUserId } from '../ids.ts';
import type { Catalog, CatalogEntry } from '../providers/catalog.ts';
import type { ProviderCallLog } from '../provider-calls/writer.ts';
import { renewsConsentAtProvider } from '../providers/kinds.ts';
import { adapterFor, type ProviderAdapter, type ProviderAdapters } from '../providers/provider.ts';
import { LONGEST_WINDOW_MS, nextScheduledSync, syncBudget, upstreamBudgetOf } from '../syncs/cadence.ts';
import type { ConnectionsRepository, ConnectionView } from './repository.ts';
import type { ConnectionJson } from './schemas.ts';
import { describeConnection, isRateLimited, latestRequestableExpiry, needsReauthAtProvider, requestedExpiryProblem } from './status.ts';
import { parseDateTime } from '../time.ts';

/** What the API shows for a provider that has left the catalog altogether. */
const UNKNOWN_PROVIDER: Pick<CatalogEntry, 'name' | 'type' | 'staleAfterHours' | 'unattendedSyncsPerDay'> = { name: 'Unknown provider', type: 'api' };

/** When the scheduler will really sync: not before a used-up unattended budget frees a slot, nor before a 429's reset. */
function nextSyncShown(next: Date | null, budget: { remaining: number; resetsAt: string | null }, rateLimitedUntil: Date | null): string | null {
  if (next === null) return null;
  let ms = next.getTime();
  if (budget.remaining === 0 && budget.resetsAt !== null) ms = Math.max(ms, Date.parse(budget.resetsAt));
  if (rateLimitedUntil !== null) ms = Math.max(ms, rateLimitedUntil.getTime());
  return new Date(ms).toISOString();
}

export function toConnectionJson(c: ConnectionView, provider: CatalogEntry | undefined, now: Date): ConnectionJson {
  const p = provider ?? UNKNOWN_PROVIDER;
  const state = describeConnection(
    {
      providerName: p.name,
      providerType: p.type,
      staleAfterHours: p.staleAfterHours,
      retired: provider === undefined || c.retired_at !== null,
      tppConsent: c.tpp_consent,
      expiredUpstream: c.upstream_expired_at !== null,
      renewsConsentAtProvider: provider !== undefined && renewsConsentAtProvider(provider.adapter),
      connectedOn: c.connected_on,
      lastUpdated: c.last_updated,
      expiresAt: c.expires_at,
      lastFetchStatus: c.last_fetch_status,
      consecutiveFailures: c.consecutive_failures,
      stateSince: c.state_since,
      nextSyncAt: c.next_sync_at,
      rateLimitedUntil: c.rate_limited_until,
    },
    now,
  );
  const budget = syncBudget(p, c.unattended_sync_times, now, upstreamBudgetOf(c.upstream_budget_remaining, c.upstream_budget_resets_at));
  const rateLimitedUntil = isRateLimited(c.rate_limited_until, now) ? c.rate_limited_until : null;
  return {
    id: c.id,
    name: p.name,
    type: p.type,
    connectedOn: c.connected_on.toISOString(),
    lastUpdated: c.last_updated?.toISOString() ?? null,
    expiresAt: c.expires_at?.toISOString() ?? null,
    accountIds: c.account_ids,
    status: state.status,
    error: state.error,
    userConsentedAt: c.user_consented_at.toISOString(),
    tppConsent: c.tpp_consent,
    extendedStatus: state.extendedStatus,
    lastAttemptAt: c.last_attempt_at?.toISOString() ?? null,
    // Nothing is scheduled for a retired provider or while consent has lapsed.
    nextSyncAt: state.status === 'never' || state.extendedStatus === 'expired' ? null : nextSyncShown(c.next_sync_at, budget, rateLimitedUntil),
    syncBudget: budget,
    rateLimitedUntil: rateLimitedUntil?.toISOString() ?? null,
    remediation: state.remediation,
  };
}

export interface ConnectionsServiceDeps {
  connections: ConnectionsRepository;
  catalog: Catalog;
  adapters: ProviderAdapters;
  clock: Clock;
  log: { warn(obj: object, msg: string): void };
  /** Runs `change` and records the connection's status change (its events) in one transaction. */
  changeConnection(connectionId: string, change: (connections: ConnectionsRepository) => Promise<void>): Promise<void>;
  /** Records the provider calls of a revocation (the provider call log). */
  callLog?: ProviderCallLog;
}

export function connectionsService(deps: ConnectionsServiceDeps) {
  const budgetSince = (now: Date): Date => new Date(now.getTime() - LONGEST_WINDOW_MS);

  async function findOrThrow(userId: string, connectionId: string): Promise<ConnectionView> {
    const c = isConnectionId(connectionId) ? await deps.connections.findForUser(userId, connectionId, budgetSince(deps.clock.now())) : undefined;
    if (c === undefined) throw notFound('Connection');
    return c;
  }

  /** Revokes the grant at the provider; a provider that cannot be reached must not block deletion. */
  async function revokeAtProvider(connectionId: string, providerId: string, grant: Parameters<ProviderAdapter['revoke']>[1]): Promise<void> {
    const provider = deps.catalog.get(providerId);
    if (provider === undefined) return;
    try {
      const revoke = (): Promise<void> => adapterFor(deps.adapters, provider).revoke(provider, grant);
      await (deps.callLog === undefined ? revoke() : deps.callLog.run({ providerId, connectionId }, revoke));
    } catch (err) {
      deps.log.warn({ connectionId, providerId, err: err instanceof Error ? err.message : String(err) }, 'could not revoke the grant at the provider; deleting the connection anyway');
    }
  }

  return {
    /** Empty when the user has no connections — or is not the client's: the caller tells those apart. */
    async listForClient(clientId: string, userId: string): Promise<ConnectionJson[]> {
      if (!isUserId(userId)) return [];
      const now = deps.clock.now();
      const rows = await deps.connections.listForClientUser(clientId, userId, budgetSince(now));
      return rows.map((c) => toConnectionJson(c, deps.catalog.get(c.provider_id), now));
    },

    async get(userId: string, connectionId: string): Promise<ConnectionJson> {
      const c = await findOrThrow(userId, connectionId);
      return toConnectionJson(c, deps.catalog.get(c.provider_id), deps.clock.now());
    },

    /** PATCH: the user renewed consent to the client outside Mooring's pages. */
    async renewConsent(userId: string, connectionId: string, expiresAtRaw: string): Promise<void> {
      const c = await findOrThrow(userId, connectionId);
      const now = deps.clock.now();
      const expiresAt = parseDateTime(expiresAtRaw);
      if (expiresAt === null) throw badRequest('invalid_expires_at', 'expiresAt must be an ISO 8601 date-time such as 2026-12-01T00:00:00Z', { field: 'expiresAt' });
      const provider = deps.catalog.get(c.provider_id);
      if (provider === undefined || c.retired_at !== null) throw badRequest('provider_retired', 'The provider of this connection has been removed; consent cannot be renewed', { field: 'connectionId' });
      if (provider.consentDays === null) throw badRequest('no_consent_expiry', `${provider.name} sets no consent expiry, so there is nothing to renew`, { field: 'expiresAt' });
      if (!c.tpp_consent) {
        throw badRequest('reconsent_not_available', `Renewing this ${provider.name} connection needs the user to re-authenticate at the bank (tppConsent is false); use a reauth journey`, { field: 'connectionId' });
      }
      if (renewsConsentAtProvider(provider.adapter)) {
        // The consent is an agreement at the provider with its own end: a new date at Mooring would not move it.
        throw badRequest('reconsent_not_available', `Renewing this ${provider.name} connection needs a new agreement at the provider; use a reconsent or reauth journey`, { field: 'connectionId' });
      }
      const reauthRequired = (): AppError => badRequest(
        'reauth_required',
        `${provider.name} ended this connection's consent itself; only a new authorisation at ${provider.name} renews it, so a reauth journey is needed (renewing it at Mooring would not)`,
        { field: 'connectionId', expiredAt: c.upstream_expired_at?.toISOString() ?? null },
      );
      if (needsReauthAtProvider({ expiredUpstream: c.upstream_expired_at !== null, renewsConsentAtProvider: renewsConsentAtProvider(provider.adapter) })) throw reauthRequired();
      const problem = requestedExpiryProblem(expiresAt, provider.consentDays, now);
      if (problem === 'not_in_future') throw badRequest('invalid_expires_at', 'expiresAt must be in the future', { field: 'expiresAt', now: now.toISOString() });
      if (problem === 'beyond_consent_length') {
        const max = latestRequestableExpiry(provider.consentDays, now);
        throw badRequest('invalid_expires_at', `expiresAt must be at most ${provider.consentDays} days from now`, { field: 'expiresAt', max: max.toISOString() });
      }
      await deps.changeConnection(connectionId, async (connections) => {
        // A sync may have recorded the provider's expiry since the read above: then nothing changes.
        if (!(await connections.renewConsent(connectionId, expiresAt, now))) throw reauthRequired();
        await connections.scheduleIfIdle(connectionId, nextScheduledSync(provider, now));
      });
    },

    async delete(userId: string, connectionId: string): Promise<void> {
      const c = await findOrThrow(userId, connectionId);
      const grant = await deps.connections.grantOf(connectionId);
      if (grant !== undefined) await revokeAtProvider(connectionId, c.provider_id, grant);
      await deps.connections.delete(connectionId);
    },

    /** Revokes every grant of a user (before the user and, by cascade, its connections are deleted). */
    async revokeAllOfUser(userId: string): Promise<void> {
      for (const g of await deps.connections.grantsOfUser(userId)) await revokeAtProvider(g.id, g.provider_id, g.provider_grant);
    },

    /** The user's connection (404 when the user has no such connection). */
    findOwnedOrThrow: findOrThrow,
  };
}
export type ConnectionsService = ReturnType<typeof connectionsService>;
