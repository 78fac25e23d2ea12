/**
 * Seeds Open Banking connections that can really sync, directly with SQL instead of connect journeys:
 * for each connection a user, an Authorised account-access consent at the sandbox bank (username and
 * behaviour `user_ok`), a live access token and refresh token bound to it (the bank keeps only their
 * SHA-256), and the connection holding the grant the Open Banking adapter reads
 * ({ consentId, accessToken, accessTokenExpiresAt, refreshToken }, see src/providers/openbanking).
 * The access token outlives the bench, so no sync needs a token refresh: each sync is the accounts
 * list, then balances and transactions of both accounts.
 *
 * Connections start off the schedule (next_sync_at null); `armAll` makes them all due.
 */
import type pg from 'pg';
import { OB_CONSENT_PERMISSIONS } from '../src/providers/openbanking/adapter.ts';

export const SYNC_CLIENT_ID = 'bench-sync-client';

export interface ObSeedSpec {
  /** Open Banking providers to spread the connections over (round robin). */
  providerIds: string[];
  count: number;
  /** Id prefix, so several seedings can share a database. */
  prefix: string;
  clientId?: string;
}

export async function seedObConnections(c: pg.Client, spec: ObSeedSpec): Promise<void> {
  const clientId = spec.clientId ?? SYNC_CLIENT_ID;
  const gen = `select g, ($2::text[])[1 + (g % array_length($2::text[], 1))] as provider_id,
                      '${spec.prefix}' || g as n from generate_series(1, $1::int) g`;
  await c.query(
    `insert into users (id, client_id, client_user_id, user_type, scopes, created_at, updated_at, last_accessed)
     select 'u-' || n, $3, 'cu-' || n, 'test', 'user:read', now() - interval '60 days', now(), now() from (${gen}) x`,
    [spec.count, spec.providerIds, clientId],
  );
  await c.query(
    `insert into sandbox_consents (id, provider_id, permissions, status, expires_at, username, behaviour, created_at,
                                   status_updated_at, authorised_at, fetch_count)
     select 'aac-' || n, provider_id, $3::jsonb, 'Authorised', now() + interval '60 days', 'user_ok', 'user_ok',
            now() - interval '30 days', now() - interval '30 days', now() - interval '30 days', 1 from (${gen}) x`,
    [spec.count, spec.providerIds, JSON.stringify(OB_CONSENT_PERMISSIONS)],
  );
  await c.query(
    `insert into sandbox_tokens (token_hash, kind, provider_id, subject_id, expires_at)
     select encode(sha256(convert_to(t.prefix || n, 'UTF8')), 'hex'), t.kind, provider_id, 'aac-' || n, now() + t.ttl
     from (${gen}) x cross join (values ('at-', 'access', interval '3 days'), ('rt-', 'refresh', interval '400 days')) t(prefix, kind, ttl)`,
    [spec.count, spec.providerIds],
  );
  await c.query(
    `insert into connections (id, user_id, provider_id, connected_on, last_updated, expires_at, user_consented_at, tpp_consent,
                              provider_ref, provider_grant, last_fetch_status, consecutive_failures, last_attempt_at, next_sync_at, created_at)
     select provider_id || ':' || n, 'u-' || n, provider_id, now() - interval '30 days', now() - interval '6 hours',
            now() + interval '60 days', now() - interval '30 days', true, 'aac-' || n,
            jsonb_build_object('consentId', 'aac-' || n, 'accessToken', 'at-' || n,
                               'accessTokenExpiresAt', to_json(now() + interval '3 days') #>> '{}', 'refreshToken', 'rt-' || n),
            'success', 0, now() - interval '6 hours', null, now() - interval '30 days'
     from (${gen}) x`,
    [spec.count, spec.providerIds],
  );
}

/**
 * Puts every seeded connection back as it was before any sync: no syncs, accounts, transactions or
 * events, data 6 hours old, and off the schedule (the syncs table is the queue: nothing else to clear).
 */
export async function resetSyncState(c: pg.Client): Promise<void> {
  await c.query('truncate syncs, webhook_deliveries, webhook_events');
  await c.query('delete from accounts');
  await c.query(
    `update connections set last_updated = now() - interval '6 hours', last_fetch_status = 'success', consecutive_failures = 0,
       state_since = null, last_attempt_at = now() - interval '6 hours', next_sync_at = null, notified_state = null, notify_check_at = null`,
  );
}

/** Makes `limit` seeded connections (all when null) due now. */
export async function armConnections(c: pg.Client, limit: number | null): Promise<number> {
  const r = await c.query(
    `update connections set next_sync_at = now() - interval '1 second'
      where id in (select id from connections where next_sync_at is null order by id ${limit === null ? '' : `limit ${Math.floor(limit)}`})`,
  );
  return r.rowCount ?? 0;
}
