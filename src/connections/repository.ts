/** SQL for connections. Reads join what the API shows in one query (accounts, budget, overrides). */
import type { Queryable } from '../db/db.ts';
import type { JsonObject } from '../providers/provider.ts';
import type { CountedFetchStatus } from './status.ts';
import { LONGEST_WINDOW_MS } from '../syncs/cadence.ts';
import type { SecretBox } from '../crypto/secrets.ts';

/** Where a connection's provider grant is sealed: the context binding it to its row. */
export const grantContext = (connectionId: string): string => `connections.provider_grant:${connectionId}`;

/**
 * Provider grants hold the bank's tokens or credentials, so the column holds them sealed (a JSON
 * string). A JSON object is a grant stored before sealing; start-up seals those.
 */
function grantCodec(box: SecretBox | undefined) {
  const need = (): SecretBox => {
    if (box === undefined) throw new Error('this connections repository was made without the secret box');
    return box;
  };
  return {
    seal: (connectionId: string, grant: JsonObject): string => JSON.stringify(need().seal(JSON.stringify(grant), grantContext(connectionId))),
    open: (connectionId: string, stored: JsonObject | string): JsonObject =>
      typeof stored === 'string' ? (JSON.parse(need().open(stored, grantContext(connectionId))) as JsonObject) : stored,
  };
}

export interface ConnectionRow {
  id: string;
  user_id: string;
  provider_id: string;
  connected_on: Date;
  last_updated: Date | null;
  expires_at: Date | null;
  user_consented_at: Date;
  tpp_consent: boolean;
  provider_ref: string | null;
  /** The last finished sync that was not rate-limited (a rate-limited one says nothing about the connection). */
  last_fetch_status: CountedFetchStatus | null;
  consecutive_failures: number;
  state_since: Date | null;
  last_attempt_at: Date | null;
  next_sync_at: Date | null;
  /** No call for this connection goes to its provider before this time (the reset of its last 429). */
  rate_limited_until: Date | null;
  /** What the upstream last said about its own per-connection limit (calls left, and when its window resets). */
  upstream_budget_remaining: number | null;
  upstream_budget_resets_at: Date | null;
  /** When the provider said the consent had expired (a sync's consent_expired), until a journey stores a new grant. */
  upstream_expired_at: Date | null;
  created_at: Date;
}

export interface ConnectionView extends ConnectionRow {
  account_ids: string[];
  unattended_sync_times: Date[];
  retired_at: Date | null;
}

const SELECT_VIEW = `
  select c.id, c.user_id, c.provider_id, c.connected_on, c.last_updated, c.expires_at, c.user_consented_at,
    c.tpp_consent, c.provider_ref, c.last_fetch_status, c.consecutive_failures, c.state_since,
    c.last_attempt_at, c.next_sync_at, c.rate_limited_until, c.upstream_budget_remaining, c.upstream_budget_resets_at, c.upstream_expired_at, c.created_at,
    coalesce((select array_agg(a.id::text order by a.created_at, a.id) from accounts a where a.connection_id = c.id), '{}') as account_ids,
    coalesce((select array_agg(s.created_at order by s.created_at) from syncs s
              where s.connection_id = c.id and not s.attended and s.created_at > $2), '{}') as unattended_sync_times,
    po.retired_at
  from connections c left join provider_overrides po on po.provider_id = c.provider_id`;

export interface DueConnection {
  id: string;
  user_id: string;
  provider_id: string;
  expires_at: Date | null;
  next_sync_at: Date;
  retired_at: Date | null;
  outage_until: Date | null;
  rate_limited_until: Date | null;
  upstream_budget_remaining: number | null;
  upstream_budget_resets_at: Date | null;
  unattended_sync_times: Date[];
}

export interface NewConnection {
  id: string;
  userId: string;
  providerId: string;
  now: Date;
  expiresAt: Date | null;
  tppConsent: boolean;
  providerRef: string;
  grant: JsonObject;
  nextSyncAt: Date | null;
}

/** `secrets` is needed by the methods that read or write provider grants. */
export function connectionsRepository(db: Queryable, secrets?: SecretBox) {
  const grants = grantCodec(secrets);
  return {
    async insert(c: NewConnection): Promise<void> {
      await db.query(
        `insert into connections (id, user_id, provider_id, connected_on, expires_at, user_consented_at, tpp_consent,
            provider_ref, provider_grant, next_sync_at, created_at)
         values ($1, $2, $3, $4, $5, $4, $6, $7, $8, $9, $4)`,
        [c.id, c.userId, c.providerId, c.now, c.expiresAt, c.tppConsent, c.providerRef, grants.seal(c.id, c.grant), c.nextSyncAt],
      );
    },

    /** `budgetSince`: how far back to collect unattended sync times for the budget. */
    /**
     * A user's connections, only if the user belongs to `clientId` (ownership is checked in the same
     * query: one round trip on the hot path). Empty for a user without connections or not the client's.
     */
    async listForClientUser(clientId: string, userId: string, budgetSince: Date): Promise<ConnectionView[]> {
      const r = await db.query<ConnectionView>(
        `${SELECT_VIEW} join users u on u.id = c.user_id where c.user_id = $1 and u.client_id = $3 order by c.created_at, c.id`,
        [userId, budgetSince, clientId],
      );
      return r.rows;
    },

    async findForUser(userId: string, connectionId: string, budgetSince: Date): Promise<ConnectionView | undefined> {
      const r = await db.query<ConnectionView>(`${SELECT_VIEW} where c.user_id = $1 and c.id = $3`, [userId, budgetSince, connectionId]);
      return r.rows[0];
    },

    async findById(connectionId: string): Promise<ConnectionRow | undefined> {
      const r = await db.query<ConnectionRow>('select * from connections where id = $1', [connectionId]);
      return r.rows[0];
    },

    /**
     * What a sync reads of its connection, in one round trip: the row, and its grant with the grant's
     * version read together (a sync writes back only if the version is unchanged). The grant is
     * opened only when asked for, so a sync that ends before calling the provider never opens it.
     */
    async findForSync(connectionId: string): Promise<{ connection: ConnectionRow; grantVersion: number; openGrant(): JsonObject } | undefined> {
      const r = await db.query<ConnectionRow & { provider_grant: JsonObject | string; grant_version: number }>('select * from connections where id = $1', [connectionId]);
      const row = r.rows[0];
      if (row === undefined) return undefined;
      return { connection: row, grantVersion: row.grant_version, openGrant: () => grants.open(connectionId, row.provider_grant) };
    },

    /** Locks the connection for the rest of the transaction and answers its grant version. */
    async lockGrantVersion(connectionId: string): Promise<number | undefined> {
      const r = await db.query<{ grant_version: number }>('select grant_version from connections where id = $1 for update', [connectionId]);
      return r.rows[0]?.grant_version;
    },

    async grantOf(connectionId: string): Promise<JsonObject | undefined> {
      const r = await db.query<{ provider_grant: JsonObject | string }>('select provider_grant from connections where id = $1', [connectionId]);
      const row = r.rows[0];
      return row === undefined ? undefined : grants.open(connectionId, row.provider_grant);
    },

    async grantsOfUser(userId: string): Promise<{ id: string; provider_id: string; provider_grant: JsonObject }[]> {
      const r = await db.query<{ id: string; provider_id: string; provider_grant: JsonObject | string }>(
        'select id, provider_id, provider_grant from connections where user_id = $1',
        [userId],
      );
      return r.rows.map((row) => ({ ...row, provider_grant: grants.open(row.id, row.provider_grant) }));
    },

    /**
     * A consent renewed at Mooring only (reconsent, PATCH): false, and nothing changes, when the
     * provider has ended the consent itself (upstream_expired_at; only a reauth renews it there).
     * It bumps grant_version, the fence of a sync that started before it: that sync's result
     * (an upstream expiry above all) must not undo the renewal (runner.ts grantReplaced).
     */
    async renewConsent(connectionId: string, expiresAt: Date | null, now: Date): Promise<boolean> {
      const r = await db.query(
        `update connections set expires_at = $2, user_consented_at = $3, grant_version = grant_version + 1
          where id = $1 and upstream_expired_at is null`,
        [connectionId, expiresAt, now],
      );
      return r.rowCount > 0;
    },

    /** Replaces the provider grant after a reauth/refresh journey; the connection starts a fresh consent. */
    async replaceGrant(connectionId: string, g: { grant: JsonObject; providerRef: string; expiresAt: Date | null; now: Date }): Promise<void> {
      await db.query(
        `update connections set provider_grant = $2, provider_ref = $3, expires_at = $4, user_consented_at = $5,
           consecutive_failures = 0, state_since = null, grant_version = grant_version + 1, upstream_expired_at = null
         where id = $1`,
        [connectionId, grants.seal(connectionId, g.grant), g.providerRef, g.expiresAt, g.now],
      );
    },

    /**
     * Records a finished sync on its connection. lastUpdated only moves on retrieved data (the caller
     * computes it); the failure streak and the time the current state began drive remediation.
     */
    async recordSyncOutcome(connectionId: string, o: { fetchStatus: CountedFetchStatus; lastUpdated: Date | null; grant: JsonObject | null; attemptAt: Date; failed: boolean }): Promise<void> {
      await db.query(
        `update connections set
           last_updated = coalesce($3, last_updated),
           provider_grant = coalesce($4, provider_grant),
           last_attempt_at = $5,
           consecutive_failures = case when $6 then consecutive_failures + 1 else 0 end,
           state_since = case when $2 = 'success' then null
                              when last_fetch_status is distinct from $2 then $5
                              else coalesce(state_since, $5) end,
           last_fetch_status = $2
         where id = $1`,
        [connectionId, o.fetchStatus, o.lastUpdated, o.grant === null ? null : grants.seal(connectionId, o.grant), o.attemptAt, o.failed],
      );
    },

    /**
     * The upstream said the consent expired at `at` (status.ts upstreamConsentExpiry): expiresAt
     * comes forward to it (never later than it was), nothing more is scheduled, and the connection
     * remembers that the provider ended it (upstream_expired_at); a journey that stores a new grant
     * (reauth, or a reconsent renewed at the provider) sets all three again. The caller holds the
     * grant_version fence: a renewal made after its sync started wins.
     */
    async recordConsentExpired(connectionId: string, at: Date): Promise<void> {
      await db.query(
        'update connections set expires_at = least(coalesce(expires_at, $2), $2), next_sync_at = null, upstream_expired_at = $2 where id = $1',
        [connectionId, at],
      );
    },

    /**
     * Records a rate-limited sync (the provider answered 429): only when Mooring may call the
     * provider again for this connection, and the attempt's time. Its status, failure streak,
     * lastUpdated and last fetch status stay as they were (SPEC sections 5 and 10). The next
     * scheduled sync moves to the reset if it was earlier (a connection off the schedule stays off).
     */
    async recordRateLimited(connectionId: string, o: { until: Date; attemptAt: Date }): Promise<void> {
      await db.query(
        `update connections set
           rate_limited_until = greatest(coalesce(rate_limited_until, $2), $2),
           last_attempt_at = $3,
           next_sync_at = case when next_sync_at is null then null else greatest(next_sync_at, $2) end
         where id = $1`,
        [connectionId, o.until, o.attemptAt],
      );
    },

    /**
     * Records what the upstream said about its own limit in a sync (null: it said nothing, and what
     * it said before no longer holds). With none left, the next scheduled sync moves to its reset.
     */
    async recordUpstreamBudget(connectionId: string, b: { remaining: number; resetsAt: Date } | null): Promise<void> {
      await db.query(
        `update connections set
           upstream_budget_remaining = $2::integer,
           upstream_budget_resets_at = $3::timestamptz,
           next_sync_at = case when next_sync_at is null or $2::integer is null or $2::integer > 0 then next_sync_at
                               else greatest(next_sync_at, $3::timestamptz) end
         where id = $1`,
        [connectionId, b?.remaining ?? null, b?.resetsAt ?? null],
      );
    },

    /**
     * Connections whose next sync is due, locked for this transaction (other schedulers skip them).
     * Served by the partial index on next_sync_at, so the cost follows the number due, not the total.
     */
    async lockDue(now: Date, limit: number): Promise<DueConnection[]> {
      const r = await db.query<DueConnection>(
        `select c.id, c.user_id, c.provider_id, c.expires_at, c.next_sync_at, c.rate_limited_until, po.retired_at, po.outage_until,
                c.upstream_budget_remaining, c.upstream_budget_resets_at,
                coalesce((select array_agg(s.created_at) from syncs s
                          where s.connection_id = c.id and not s.attended and s.created_at > $3), '{}') as unattended_sync_times
           from connections c left join provider_overrides po on po.provider_id = c.provider_id
          where c.next_sync_at <= $1
          order by c.next_sync_at
          limit $2
          for update of c skip locked`,
        [now, limit, new Date(now.getTime() - LONGEST_WINDOW_MS)],
      );
      return r.rows;
    },

    async setNextSyncTimes(updates: { id: string; next: Date | null }[]): Promise<void> {
      if (updates.length === 0) return;
      await db.query(
        `update connections c set next_sync_at = x.next
           from jsonb_to_recordset($1::jsonb) as x(id text, next timestamptz) where c.id = x.id`,
        [JSON.stringify(updates.map((u) => ({ id: u.id, next: u.next?.toISOString() ?? null })))],
      );
    },

    /**
     * Connections of these providers that are off the schedule (no next sync time), with what decides
     * whether they may return to it: a page of `limit` in id order after `afterId`. Walks the primary
     * key once over all pages, whatever the number of providers.
     */
    async unscheduledOfProviders(providerIds: string[], afterId: string, limit: number): Promise<{ id: string; provider_id: string; expires_at: Date | null; retired_at: Date | null }[]> {
      const r = await db.query<{ id: string; provider_id: string; expires_at: Date | null; retired_at: Date | null }>(
        `select c.id, c.provider_id, c.expires_at, po.retired_at
           from connections c left join provider_overrides po on po.provider_id = c.provider_id
          where c.id > $2 and c.next_sync_at is null and c.provider_id = any($1::text[])
          order by c.id
          limit $3`,
        [providerIds, afterId, limit],
      );
      return r.rows;
    },

    /** Puts connections back on the schedule, each unless it already is; answers how many were. */
    async scheduleManyIfIdle(updates: { id: string; next: Date }[]): Promise<number> {
      if (updates.length === 0) return 0;
      const r = await db.query(
        `update connections c set next_sync_at = x.next
           from jsonb_to_recordset($1::jsonb) as x(id text, next timestamptz) where c.id = x.id and c.next_sync_at is null`,
        [JSON.stringify(updates.map((u) => ({ id: u.id, next: u.next.toISOString() })))],
      );
      return r.rowCount;
    },

    /** Puts a connection back on the schedule (after its consent was renewed), unless it already is. */
    async scheduleIfIdle(connectionId: string, next: Date): Promise<void> {
      await db.query('update connections set next_sync_at = $2 where id = $1 and next_sync_at is null', [connectionId, next]);
    },

    async existsForUser(connectionId: string, userId: string | null): Promise<boolean> {
      const r = await db.query('select 1 from connections where id = $1 and user_id = $2', [connectionId, userId]);
      return r.rowCount > 0;
    },

    /** Locks a connection's row and answers its owner and the state its client was last told (`notified_state`). */
    async lockNotifiedState(connectionId: string): Promise<{ user_id: string; client_id: string; notified_state: string | null } | undefined> {
      const r = await db.query<{ user_id: string; client_id: string; notified_state: string | null }>(
        `select c.user_id, u.client_id, c.notified_state from connections c join users u on u.id = c.user_id where c.id = $1 for update of c`,
        [connectionId],
      );
      return r.rows[0];
    },

    /** Records the state the client has been told and when time alone may next change it. */
    async setNotifiedState(connectionId: string, encoded: string, checkAt: Date | null): Promise<void> {
      await db.query('update connections set notified_state = $2, notify_check_at = $3 where id = $1', [connectionId, encoded, checkAt]);
    },

    /** Appends to the connection's status history (`from` null: its first state); states are encoded as in notified_state. */
    async insertStatusChange(c: { connectionId: string; at: Date; from: string | null; to: string; remediationAction: string }): Promise<void> {
      await db.query(
        'insert into connection_status_changes (connection_id, at, from_state, to_state, remediation_action) values ($1, $2, $3, $4, $5)',
        [c.connectionId, c.at, c.from, c.to, c.remediationAction],
      );
    },

    /** Locks (skipping those locked elsewhere) connections whose status should be checked by now. */
    async lockDueStatusChecks(now: Date, limit: number): Promise<string[]> {
      const r = await db.query<{ id: string }>(
        `select c.id from connections c where c.notify_check_at <= $1 order by c.notify_check_at limit $2 for update skip locked`,
        [now, limit],
      );
      return r.rows.map((x) => x.id);
    },

    /** Locks connections whose consent lapses in (now, expiringBy] and that were not reminded after `remindedBefore`. */
    async lockDueReauthReminders(now: Date, expiringBy: Date, remindedBefore: Date, limit: number): Promise<{ id: string; user_id: string; client_id: string; provider_id: string; expires_at: Date; tpp_consent: boolean }[]> {
      const r = await db.query<{ id: string; user_id: string; client_id: string; provider_id: string; expires_at: Date; tpp_consent: boolean }>(
        `select c.id, c.user_id, u.client_id, c.provider_id, c.expires_at, c.tpp_consent
           from connections c join users u on u.id = c.user_id
          where c.expires_at > $1 and c.expires_at <= $2 and (c.reauth_reminded_at is null or c.reauth_reminded_at <= $3)
          limit $4 for update of c skip locked`,
        [now, expiringBy, remindedBefore, limit],
      );
      return r.rows;
    },

    async markReauthReminded(connectionId: string, now: Date): Promise<void> {
      await db.query('update connections set reauth_reminded_at = $2 where id = $1', [connectionId, now]);
    },

    /** Locks connections of `providerIds` with no new data since `notUpdatedSince` and not reminded after `remindedBefore`. */
    async lockDueRefreshReminders(providerIds: string[], notUpdatedSince: Date, remindedBefore: Date, limit: number): Promise<{ id: string; user_id: string; client_id: string; provider_id: string; last_updated: Date | null; connected_on: Date }[]> {
      const r = await db.query<{ id: string; user_id: string; client_id: string; provider_id: string; last_updated: Date | null; connected_on: Date }>(
        `select c.id, c.user_id, u.client_id, c.provider_id, c.last_updated, c.connected_on
           from connections c join users u on u.id = c.user_id
          where c.provider_id = any($1::text[]) and coalesce(c.last_updated, c.connected_on) <= $2
            and (c.refresh_reminded_at is null or c.refresh_reminded_at <= $3)
          limit $4 for update of c skip locked`,
        [providerIds, notUpdatedSince, remindedBefore, limit],
      );
      return r.rows;
    },

    async markRefreshReminded(connectionId: string, now: Date): Promise<void> {
      await db.query('update connections set refresh_reminded_at = $2 where id = $1', [connectionId, now]);
    },

    /** The provider's reference for a connection (its consent or credential id at the bank), if it has one. */
    async providerRefOf(connectionId: string): Promise<string | null> {
      const r = await db.query<{ provider_ref: string | null }>('select provider_ref from connections where id = $1', [connectionId]);
      return r.rows[0]?.provider_ref ?? null;
    },

    /** Has the event sweep look at every connection of a provider at `at` (its status may have changed). */
    async checkStatusOfProviderAt(providerId: string, at: Date): Promise<void> {
      await db.query('update connections set notify_check_at = $2 where provider_id = $1', [providerId, at]);
    },

    async delete(connectionId: string): Promise<boolean> {
      const r = await db.query('delete from connections where id = $1', [connectionId]);
      return r.rowCount > 0;
    },
  };
}
export type ConnectionsRepository = ReturnType<typeof connectionsRepository>;
