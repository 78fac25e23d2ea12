/**
 * The events of a finished sync and the time-driven events (status changes nobody caused,
 * reminders), logged exactly once: status changes are detected and recorded by
 * connections/status-change.ts; sync events and reminders carry keys that cannot repeat.
 */
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import { connectionsRepository } from '../connections/repository.ts';
import { statusChangeRecorder } from '../connections/status-change.ts';
import type { Catalog } from '../providers/catalog.ts';
import type { SyncRow } from '../syncs/repository.ts';
import { usersRepository } from '../users/repository.ts';
import { webhooksRepository } from './repository.ts';
import { REAUTH_REMINDER_DAYS_BEFORE, REFRESH_REMINDER_AFTER_DAYS, REMINDER_INTERVAL_HOURS } from './policy.ts';
import { DAY_MS, HOUR_MS } from '../time.ts';

/** Transaction ids per account in one newTransactions event (Moneyhub caps them the same way). */
const MAX_TRANSACTION_IDS = 6000;
const SWEEP_BATCH = 500;

export interface NewTransactions {
  accountId: string;
  transactionIds: string[];
}

export function connectionEvents(deps: { catalog: Catalog; clock: Clock }) {
  const recordStatusChange = statusChangeRecorder(deps);

  return {
    /** Inside the transaction that finished a sync (`sync` is its finished row): its events, then any status change. */
    async afterSync(tx: Queryable, sync: SyncRow, newTransactions: NewTransactions[]): Promise<void> {
      const clientId = await usersRepository(tx).clientIdOf(sync.user_id);
      if (clientId === undefined) return;
      const events = webhooksRepository(tx);
      const now = deps.clock.now();
      await events.insertEvent({
        clientId, userId: sync.user_id, now, type: 'syncCompleted', dedupeKey: `syncCompleted:${sync.id}`,
        payload: { connectionId: sync.connection_id, syncId: sync.id, action: sync.action, fetchStatus: sync.fetch_status, counts: sync.counts, errorDetail: sync.error_detail },
      });
      const accounts = newTransactions.filter((a) => a.transactionIds.length > 0);
      if (accounts.length > 0) {
        await events.insertEvent({
          clientId, userId: sync.user_id, now, type: 'newTransactions', dedupeKey: `newTransactions:${sync.id}`,
          payload: { connectionId: sync.connection_id, accounts: accounts.map((a) => ({ id: a.accountId, transactions: a.transactionIds.slice(0, MAX_TRANSACTION_IDS) })) },
        });
      }
      await recordStatusChange(tx, sync.connection_id);
    },

    /**
     * Time-driven events: status changes that need no sync (consent expiry, staleness, a retired
     * provider), reauthReminder from 5 days before expiry and refreshReminder for legacy
     * connections not updated for 2 days, each at most every 48 hours.
     */
    async sweep(db: Db): Promise<number> {
      const now = deps.clock.now();
      let emitted = 0;
      await db.transaction(async (tx) => {
        for (const id of await connectionsRepository(tx).lockDueStatusChecks(now, SWEEP_BATCH)) await recordStatusChange(tx, id);
      });
      await db.transaction(async (tx) => {
        const events = webhooksRepository(tx);
        const txConnections = connectionsRepository(tx);
        const remindedBefore = new Date(now.getTime() - REMINDER_INTERVAL_HOURS * HOUR_MS);
        const reauth = await txConnections.lockDueReauthReminders(now, new Date(now.getTime() + REAUTH_REMINDER_DAYS_BEFORE * DAY_MS), remindedBefore, SWEEP_BATCH);
        for (const c of reauth) {
          const provider = deps.catalog.get(c.provider_id);
          if (provider === undefined) continue;
          await events.insertEvent({
            clientId: c.client_id, userId: c.user_id, now, type: 'reauthReminder', dedupeKey: `reauthReminder:${c.id}:${now.toISOString()}`,
            payload: { connectionId: c.id, bankName: provider.name, timeUntilReauthorizationInDays: Math.ceil((c.expires_at.getTime() - now.getTime()) / DAY_MS), tppConsent: c.tpp_consent },
          });
          await txConnections.markReauthReminded(c.id, now);
          emitted += 1;
        }
        const legacyIds = deps.catalog.all().filter((p) => p.type === 'legacy').map((p) => p.id);
        const refresh = await txConnections.lockDueRefreshReminders(legacyIds, new Date(now.getTime() - REFRESH_REMINDER_AFTER_DAYS * DAY_MS), remindedBefore, SWEEP_BATCH);
        for (const c of refresh) {
          const provider = deps.catalog.get(c.provider_id);
          if (provider === undefined) continue;
          await events.insertEvent({
            clientId: c.client_id, userId: c.user_id, now, type: 'refreshReminder', dedupeKey: `refreshReminder:${c.id}:${now.toISOString()}`,
            payload: { connectionId: c.id, bankName: provider.name, periodSinceLastUpdateInDays: Math.floor((now.getTime() - (c.last_updated ?? c.connected_on).getTime()) / DAY_MS) },
          });
          await txConnections.markRefreshReminded(c.id, now);
          emitted += 1;
        }
      });
      return emitted;
    },
  };
}
export type ConnectionEvents = ReturnType<typeof connectionEvents>;
