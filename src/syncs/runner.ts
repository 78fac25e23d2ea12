/**
 * Runs one sync of one connection: asks the provider adapter for data, stores what came back,
 * records the attempt, and updates the connection's freshness and failure streak. Provider
 * failures arrive as ProviderErrors and are decided by kind; nothing here parses messages.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { connectionsRepository } from '../connections/repository.ts';
import { nextLastUpdated, type FetchStatus } from '../connections/status.ts';
import type { AdapterKind, Catalog } from '../providers/catalog.ts';
import { ProviderError, type ProviderAdapter, type ProviderErrorKind } from '../providers/provider.ts';
import { syncsRepository, type SyncRow } from './repository.ts';
import type { SyncAction, SyncJson } from './schemas.ts';

export interface SyncRunnerDeps {
  db: Db;
  catalog: Catalog;
  adapters: Record<AdapterKind, ProviderAdapter>;
  clock: Clock;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export interface SyncRequest {
  connectionId: string;
  action: SyncAction;
  /** The user is present (journeys, or a client sync sent with customerIpAddress). */
  attended: boolean;
  /** The user's IP address when attended; providers are told the customer is present. */
  customerIpAddress?: string;
}

export type SyncOutcome =
  | { kind: 'ran'; sync: SyncRow }
  /** No sync was attempted: the connection cannot sync now (provider retired, consent expired). */
  | { kind: 'skipped'; reason: 'retired' | 'expired' | 'not_found' };

/** Transactions are re-read from this long before lastUpdated, to pick up late bookings and changes. */
const OVERLAP_MS = 7 * 86_400_000;

const FETCH_STATUS_BY_ERROR: Record<ProviderErrorKind, FetchStatus> = {
  credentials: 'credentials-error',
  mfa_required: 'mfa-required',
  unavailable: 'error',
  bad_response: 'error',
  timeout: 'error',
  rate_limited: 'error',
  journey_rejected: 'error',
  invalid_input: 'error',
};

export function toSyncJson(s: SyncRow): SyncJson {
  return {
    id: s.id,
    connectionId: s.connection_id,
    action: s.action,
    method: s.method,
    fetchStatus: s.fetch_status,
    createdAt: s.created_at.toISOString(),
    fetchedAt: s.fetched_at?.toISOString() ?? null,
    accounts: s.accounts,
    state: s.state,
    finishedAt: s.finished_at?.toISOString() ?? null,
    counts: s.counts,
    errorDetail: s.error_detail,
  };
}

export function syncRunner(deps: SyncRunnerDeps) {
  const connections = connectionsRepository(deps.db);
  const syncs = syncsRepository(deps.db);

  return async function runSync(req: SyncRequest): Promise<SyncOutcome> {
    const conn = await connections.findById(req.connectionId);
    if (conn === undefined) return { kind: 'skipped', reason: 'not_found' };
    const provider = deps.catalog.get(conn.provider_id);
    const retired = await deps.db.query('select 1 from provider_overrides where provider_id = $1 and retired_at is not null', [conn.provider_id]);
    if (provider === undefined || retired.rowCount > 0) return { kind: 'skipped', reason: 'retired' };
    const startedAt = deps.clock.now();
    if (conn.expires_at !== null && conn.expires_at.getTime() <= startedAt.getTime()) return { kind: 'skipped', reason: 'expired' };

    const sync = await syncs.insertRunning({
      id: randomUUID(),
      connectionId: conn.id,
      userId: conn.user_id,
      providerId: conn.provider_id,
      action: req.action,
      attended: req.attended,
      now: startedAt,
    });
    const grant = (await connections.grantOf(conn.id)) ?? {};
    const adapter = deps.adapters[provider.adapter];

    try {
      const result = await adapter.fetch({
        provider,
        grant,
        attended: req.attended,
        ...(req.customerIpAddress !== undefined ? { customerIpAddress: req.customerIpAddress } : {}),
        since: conn.last_updated === null ? null : new Date(conn.last_updated.getTime() - OVERLAP_MS),
        now: startedAt,
      });
      const fetchedAt = deps.clock.now();
      const fetchStatus: FetchStatus = result.partial ? 'partial' : 'success';
      await deps.db.transaction(async (tx) => {
        const txSyncs = syncsRepository(tx);
        const accountIds = await txSyncs.upsertAccounts(conn.id, conn.user_id, result.accounts, fetchedAt);
        const { added, updated } = await txSyncs.upsertTransactions(conn.user_id, accountIds, result.transactions, fetchedAt);
        await connectionsRepository(tx).recordSyncOutcome(conn.id, {
          fetchStatus,
          lastUpdated: nextLastUpdated(conn.last_updated, result.asOf, fetchedAt),
          grant: result.grant,
          attemptAt: startedAt,
          failed: result.partial,
        });
        await txSyncs.finish(sync.id, {
          fetchStatus,
          fetchedAt,
          finishedAt: deps.clock.now(),
          counts: { accounts: result.accounts.length, transactionsAdded: added, transactionsUpdated: updated },
          errorDetail: result.partial ? (result.partialDetail ?? 'Some data could not be retrieved from the provider') : null,
          accounts: [...accountIds.values()].map((accountId) => ({ providerId: provider.id, accountId })),
        });
      });
    } catch (err) {
      const kind: ProviderErrorKind = err instanceof ProviderError ? err.kind : 'bad_response';
      if (!(err instanceof ProviderError)) {
        deps.log.error({ connectionId: conn.id, syncId: sync.id, err: err instanceof Error ? err.stack : String(err) }, 'sync failed with an unexpected error');
      }
      const fetchStatus = FETCH_STATUS_BY_ERROR[kind];
      const detail = err instanceof ProviderError ? err.safeDetail : 'Mooring could not process the provider\'s answer';
      await deps.db.transaction(async (tx) => {
        await connectionsRepository(tx).recordSyncOutcome(conn.id, { fetchStatus, lastUpdated: null, grant: null, attemptAt: startedAt, failed: true });
        await syncsRepository(tx).finish(sync.id, {
          fetchStatus,
          fetchedAt: null,
          finishedAt: deps.clock.now(),
          counts: { accounts: 0, transactionsAdded: 0, transactionsUpdated: 0 },
          errorDetail: detail,
          accounts: [],
        });
      });
    }
    const done = await syncs.findForUser(conn.user_id, sync.id);
    if (done === undefined) throw new Error('sync record vanished');
    return { kind: 'ran', sync: done };
  };
}
export type RunSync = ReturnType<typeof syncRunner>;
