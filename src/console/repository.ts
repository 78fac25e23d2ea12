/**
 * SQL for the operator console: search, a connection's timeline sources, the error groups of the
 * overview, and a client's and a provider's figures. Every read is an index range (one connection,
 * one user, one name prefix, one client, one provider's recent syncs, the connections not ok).
 */
import type { Queryable } from '../db/db.ts';
import type { SourceBound } from './timeline.ts';

/** Where a prefix's range ends: every string starting with the prefix sorts below it (collation "C"). */
const prefixEnd = (prefix: string): string => `${prefix}\u{10FFFF}`;

/**
 * The rows of one source after a timeline cursor, newest first: `at <= before` is the index range;
 * rows at exactly `before` pass by the bound's tie rule. Parameters $2..$4 are the bound. Every
 * timeline time is written from Mooring's clock (milliseconds), so a cursor's time compares exactly.
 */
const after = (at: string, id: string): string =>
  `${at} <= coalesce($2::timestamptz, 'infinity') and ($2::timestamptz is null or ${at} < $2::timestamptz or $3::text = 'all' or ($3::text = 'smaller_id' and ${id} collate "C" < $4::text))`;
const boundParams = (b: SourceBound): unknown[] => [b.before, b.tie, b.id];

export interface JourneySourceRow { id: string; at: Date; kind: string; step: string; provider_id: string | null; updated_at: Date }
export interface SyncSourceRow {
  id: string; at: Date; action: string; method: string; state: string; attended: boolean; fetch_status: string | null;
  finished_at: Date | null; counts: { accounts: number; transactionsAdded: number; transactionsUpdated: number }; error_detail: string | null; internal_failure: boolean;
}
export interface StatusChangeSourceRow { id: string; at: Date; from_state: string | null; to_state: string; remediation_action: string }
export interface ProviderCallSourceRow {
  id: string; at: Date; provider_id: string; sync_id: string | null; journey_id: string | null; method: string; endpoint: string;
  status: number | null; latency_ms: number; error_kind: string | null; interaction_id: string | null;
}
export interface WebhookEventSourceRow {
  id: string; at: Date; event_type: string; payload: Record<string, unknown>; attempts: number;
  delivered_at: Date | null; next_attempt_at: Date | null; gave_up_at: Date | null;
}
export interface DeliverySourceRow { event_id: string; at: Date; status: string; response_code: number | null; error: string | null }

export interface UserHit { id: string; client_id: string; client_user_id: string | null; created_at: Date }
export interface ConnectionHit { id: string; user_id: string; provider_id: string; notified_state: string | null }
export interface ClientHit { id: string; name: string | null }

/** The provider page groups at most this many of a provider's newest failed syncs. */
export const PROVIDER_FAILURES_SCANNED = 10_000;

export function consoleRepository(db: Queryable) {
  return {
    async journeysOf(connectionId: string, b: SourceBound, limit: number): Promise<JourneySourceRow[]> {
      // Recent journeys, and those the purge kept in journey_history (a journey is in one or the other).
      const r = await db.query<JourneySourceRow>(
        `select * from (
           (select uid as id, created_at as at, kind, step, provider_id, updated_at from journeys
             where connection_id = $1 and ${after('created_at', 'uid')}
             order by created_at desc, uid collate "C" desc limit $5)
           union all
           (select uid as id, created_at as at, kind, step, provider_id, updated_at from journey_history
             where connection_id = $1 and ${after('created_at', 'uid')}
             order by created_at desc, uid collate "C" desc limit $5)
         ) j order by at desc, id collate "C" desc limit $5`,
        [connectionId, ...boundParams(b), limit],
      );
      return r.rows;
    },

    async syncsOf(connectionId: string, b: SourceBound, limit: number): Promise<SyncSourceRow[]> {
      const r = await db.query<SyncSourceRow>(
        `select id::text as id, created_at as at, action, method, state, attended, fetch_status, finished_at, counts, error_detail, internal_failure from syncs
          where connection_id = $1 and ${after('created_at', 'id::text')}
          order by created_at desc, id::text collate "C" desc limit $5`,
        [connectionId, ...boundParams(b), limit],
      );
      return r.rows;
    },

    async statusChangesOf(connectionId: string, b: SourceBound, limit: number): Promise<StatusChangeSourceRow[]> {
      const r = await db.query<StatusChangeSourceRow>(
        `select id::text as id, at, from_state, to_state, remediation_action from connection_status_changes
          where connection_id = $1 and ${after('at', 'id::text')}
          order by at desc, id::text collate "C" desc limit $5`,
        [connectionId, ...boundParams(b), limit],
      );
      return r.rows;
    },

    async providerCallsOf(connectionId: string, b: SourceBound, limit: number): Promise<ProviderCallSourceRow[]> {
      const r = await db.query<ProviderCallSourceRow>(
        `select id::text as id, at, provider_id, sync_id::text as sync_id, journey_id::text as journey_id, method, endpoint, status, latency_ms, error_kind, interaction_id
           from provider_calls
          where connection_id = $1 and ${after('at', 'id::text')}
          order by at desc, id::text collate "C" desc limit $5`,
        [connectionId, ...boundParams(b), limit],
      );
      return r.rows;
    },

    async webhookEventsOf(connectionId: string, b: SourceBound, limit: number): Promise<WebhookEventSourceRow[]> {
      const r = await db.query<WebhookEventSourceRow>(
        `select id::text as id, created_at as at, event_type, payload, attempts, delivered_at, next_attempt_at, gave_up_at from webhook_events
          where payload ? 'connectionId' and payload->>'connectionId' = $1 and ${after('created_at', 'id::text')}
          order by created_at desc, id::text collate "C" desc limit $5`,
        [connectionId, ...boundParams(b), limit],
      );
      return r.rows;
    },

    async deliveriesOf(eventIds: string[]): Promise<DeliverySourceRow[]> {
      if (eventIds.length === 0) return [];
      const r = await db.query<DeliverySourceRow>(
        'select event_id::text as event_id, at, status, response_code, error from webhook_deliveries where event_id = any($1::uuid[]) order by at, id',
        [eventIds],
      );
      return r.rows;
    },

    async hasWebhook(clientId: string): Promise<boolean> {
      return (await db.query('select 1 from webhook_endpoints where client_id = $1', [clientId])).rowCount > 0;
    },

    /** A webhook event's client and connection (for a replay), if it exists. */
    async webhookEvent(eventId: string): Promise<{ client_id: string; connection_id: string | null } | undefined> {
      const r = await db.query<{ client_id: string; connection_id: string | null }>(
        `select client_id, payload->>'connectionId' as connection_id from webhook_events where id = $1::uuid`,
        [eventId],
      );
      return r.rows[0];
    },

    async userById(id: string): Promise<UserHit | undefined> {
      return (await db.query<UserHit>('select id, client_id, client_user_id, created_at from users where id = $1', [id])).rows[0];
    },

    /** Users whose clientUserId is `prefix` or starts with it (exact ones sort first), across clients. */
    async usersByClientUserIdPrefix(prefix: string, limit: number): Promise<UserHit[]> {
      const r = await db.query<UserHit>(
        `select id, client_id, client_user_id, created_at from users
          where client_user_id is not null and client_user_id collate "C" >= $1 and client_user_id collate "C" < $2
          order by client_user_id collate "C", id limit $3`,
        [prefix, prefixEnd(prefix), limit],
      );
      return r.rows;
    },

    async connectionById(id: string): Promise<ConnectionHit | undefined> {
      return (await db.query<ConnectionHit>('select id, user_id, provider_id, notified_state from connections where id = $1', [id])).rows[0];
    },

    async connectionsOfUsers(userIds: string[], limit: number): Promise<ConnectionHit[]> {
      if (userIds.length === 0) return [];
      const r = await db.query<ConnectionHit>(
        'select id, user_id, provider_id, notified_state from connections where user_id = any($1::text[]) order by user_id, created_at, id limit $2',
        [userIds, limit],
      );
      return r.rows;
    },

    async clientById(id: string): Promise<ClientHit | undefined> {
      return (await db.query<ClientHit>(`select id, payload->>'client_name' as name from oidc_models where kind = 'Client' and id = $1`, [id])).rows[0];
    },

    /** API clients whose name starts with `prefix` (case-insensitive). */
    async clientsByNamePrefix(prefix: string, limit: number): Promise<ClientHit[]> {
      const lower = prefix.toLowerCase();
      const r = await db.query<ClientHit>(
        `select id, payload->>'client_name' as name from oidc_models
          where kind = 'Client' and lower(payload->>'client_name') collate "C" >= $1 and lower(payload->>'client_name') collate "C" < $2
          order by lower(payload->>'client_name') collate "C", id limit $3`,
        [lower, prefixEnd(lower), limit],
      );
      return r.rows;
    },

    /** The connections of one error group, by id after `afterId`. */
    async notOkGroupMembers(state: string, providerId: string, afterId: string, limit: number): Promise<{ id: string; user_id: string; client_id: string; client_user_id: string | null; last_attempt_at: Date | null }[]> {
      const r = await db.query<{ id: string; user_id: string; client_id: string; client_user_id: string | null; last_attempt_at: Date | null }>(
        `select c.id, c.user_id, u.client_id, u.client_user_id, c.last_attempt_at
           from connections c join users u on u.id = c.user_id
          where c.notified_state <> 'ok::' and c.notified_state = $1 and c.provider_id = $2 and c.id > $3
          order by c.id limit $4`,
        [state, providerId, afterId, limit],
      );
      return r.rows;
    },

    async recentUsersOfClient(clientId: string, limit: number): Promise<UserHit[]> {
      const r = await db.query<UserHit>(
        'select id, client_id, client_user_id, created_at from users where client_id = $1 order by created_at desc, id desc limit $2',
        [clientId, limit],
      );
      return r.rows;
    },

    async clientCounts(clientId: string): Promise<{ users: number; byState: { state: string | null; n: number }[] }> {
      const [users, states] = await Promise.all([
        db.query<{ n: number }>('select count(*)::int as n from users where client_id = $1', [clientId]),
        db.query<{ state: string | null; n: number }>(
          'select c.notified_state as state, count(*)::int as n from connections c join users u on u.id = c.user_id where u.client_id = $1 group by c.notified_state order by n desc',
          [clientId],
        ),
      ]);
      return { users: users.rows[0]?.n ?? 0, byState: states.rows };
    },

    /** A client's webhook deliveries of events since `since`, its backlog, and its last failed attempt. */
    async webhookHealth(clientId: string, since: Date): Promise<{
      url: string | null; attempts: number; delivered: number; pending: number; oldestPending: Date | null; abandoned: number;
      lastFailure: { at: Date; response_code: number | null; error: string | null; event_id: string; event_type: string } | null;
    }> {
      const [endpoint, attempts, backlog, failure] = await Promise.all([
        db.query<{ url: string }>('select url from webhook_endpoints where client_id = $1', [clientId]),
        db.query<{ attempts: number; delivered: number; abandoned: number }>(
          `select (select count(*)::int from webhook_deliveries d join webhook_events e on e.id = d.event_id where e.client_id = $1 and e.created_at > $2 and d.at > $2) as attempts,
                  (select count(*)::int from webhook_deliveries d join webhook_events e on e.id = d.event_id where e.client_id = $1 and e.created_at > $2 and d.at > $2 and d.status = 'delivered') as delivered,
                  (select count(*)::int from webhook_events e where e.client_id = $1 and e.created_at > $2 and e.gave_up_at is not null) as abandoned`,
          [clientId, since],
        ),
        db.query<{ pending: number; oldest: Date | null }>(
          'select count(*)::int as pending, min(created_at) as oldest from webhook_events where client_id = $1 and next_attempt_at is not null',
          [clientId],
        ),
        db.query<{ at: Date; response_code: number | null; error: string | null; event_id: string; event_type: string }>(
          `select d.at, d.response_code, d.error, e.id::text as event_id, e.event_type from webhook_events e join webhook_deliveries d on d.event_id = e.id
            where e.client_id = $1 and e.created_at > $2 and d.status = 'failed' order by d.at desc limit 1`,
          [clientId, since],
        ),
      ]);
      const a = attempts.rows[0];
      return {
        url: endpoint.rows[0]?.url ?? null,
        attempts: a?.attempts ?? 0, delivered: a?.delivered ?? 0, abandoned: a?.abandoned ?? 0,
        pending: backlog.rows[0]?.pending ?? 0, oldestPending: backlog.rows[0]?.oldest ?? null,
        lastFailure: failure.rows[0] ?? null,
      };
    },

    /**
     * A provider's failed syncs since `since`, grouped by outcome and detail: at most the newest
     * PROVIDER_FAILURES_SCANNED of them (read along the failures-only index, migration 0019), so a
     * provider-wide outage at a million connections costs no more than a quiet day.
     */
    async providerFailures(providerId: string, since: Date, limit: number): Promise<{ fetch_status: string; error_detail: string | null; n: number; last: Date }[]> {
      const r = await db.query<{ fetch_status: string; error_detail: string | null; n: number; last: Date }>(
        `select fetch_status, error_detail, count(*)::int as n, max(finished_at) as last from (
           select fetch_status, error_detail, finished_at from syncs
            where provider_id = $1 and finished_at > $2 and state = 'done' and fetch_status <> 'success'
            order by finished_at desc limit $4
         ) recent
          group by fetch_status, error_detail order by n desc, last desc limit $3`,
        [providerId, since, limit, PROVIDER_FAILURES_SCANNED],
      );
      return r.rows;
    },
  };
}
export type ConsoleRepository = ReturnType<typeof consoleRepository>;

