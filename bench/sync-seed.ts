/**
 * Seeds Open Banking connections that can really sync, directly with SQL instead of connect journeys:
 * for each connection a user, an Authorised account-access consent at the sandbox FAPI bank (username
 * and behaviour `user_ok`), the bank's grant for it with a live access token and refresh token, both
 * bound to the sandbox PKI's client certificate (x5t#S256) and stored as the bank's oidc-provider
 * stores them (oidc_models, kind `sandbox-ob/<slug>:<model>`, id = SHA-256 of the token, see
 * src/oauth/adapter.ts and src/sandbox/banks/fapi-provider.ts), and the connection holding the grant
 * the Open Banking adapter reads ({ consentId, accessToken, accessTokenExpiresAt, refreshToken, authTime }).
 * The access token outlives the bench, so no sync needs a token refresh: each sync is the accounts
 * list, then balances and transactions of both accounts.
 *
 * Connections start off the schedule (next_sync_at null); `armAll` makes them all due.
 */
import { createHash, X509Certificate } from 'node:crypto';
import type pg from 'pg';
import { sandboxCatalog } from '../src/providers/catalog.ts';
import { SANDBOX_OB_CLIENT_ID, SANDBOX_OB_PERMISSIONS } from '../src/sandbox/banks/fapi-settings.ts';
import { loadSandboxPki } from '../src/sandbox/pki.ts';
import { BENCH_DATA_DIR } from './common.ts';

export const SYNC_CLIENT_ID = 'bench-sync-client';

export interface ObSeedSpec {
  /** Open Banking providers to spread the connections over (round robin). */
  providerIds: string[];
  count: number;
  /** Id prefix, so several seedings can share a database. */
  prefix: string;
  clientId?: string;
  /** The data directory of the API processes (its sandbox PKI's client certificate binds the tokens). */
  dataDir?: string;
}

/** The oidc-provider adapter's stored id of a token: SHA-256, base64url (src/crypto/secrets.ts hashSecret). */
const hashedId = (sqlValue: string): string =>
  `rtrim(translate(encode(sha256(convert_to(${sqlValue}, 'UTF8')), 'base64'), '+/', '-_'), '=')`;

export async function seedObConnections(c: pg.Client, spec: ObSeedSpec): Promise<void> {
  const clientId = spec.clientId ?? SYNC_CLIENT_ID;
  // Token lifetimes are real time as this process sees it (the bank and the adapter check them so), not PostgreSQL's clock.
  const tokenNow = new Date();
  const pki = loadSandboxPki(spec.dataDir ?? BENCH_DATA_DIR, []);
  const thumbprint = createHash('sha256').update(new X509Certificate(pki.clientCert).raw).digest('base64url');
  const slugs = spec.providerIds.map((id) => {
    const entry = sandboxCatalog('http://unused').find((e) => e.id === id && e.adapter === 'openbanking');
    if (entry === undefined) throw new Error(`${id} is not a sandbox Open Banking provider`);
    return entry.bankRef;
  });
  const gen = `select g, ($2::text[])[1 + (g % array_length($2::text[], 1))] as provider_id,
                      ($3::text[])[1 + (g % array_length($3::text[], 1))] as slug,
                      '${spec.prefix}' || g as n from generate_series(1, $1::int) g`;
  const params = [spec.count, spec.providerIds, slugs];
  await c.query(
    `insert into users (id, client_id, client_user_id, user_type, scopes, created_at, updated_at, last_accessed)
     select 'u-' || n, $4, 'cu-' || n, 'test', 'user:read', now() - interval '60 days', now(), now() from (${gen}) x`,
    [...params, clientId],
  );
  await c.query(
    `insert into sandbox_consents (id, provider_id, permissions, status, expires_at, username, behaviour, created_at,
                                   status_updated_at, authorised_at, fetch_count)
     select 'aac-' || n, provider_id, $4::jsonb, 'Authorised', now() + interval '60 days', 'user_ok', 'user_ok',
            now() - interval '30 days', now() - interval '30 days', now() - interval '30 days', 1 from (${gen}) x`,
    [...params, JSON.stringify(SANDBOX_OB_PERMISSIONS)],
  );
  // The bank's grant (ConsentId = the account), and the certificate-bound tokens issued under it.
  await c.query(
    `insert into oidc_models (kind, id, payload, grant_id, expires_at)
     select 'sandbox-ob/' || slug || ':' || t.model, ${hashedId("t.prefix || n")},
            jsonb_build_object('kind', t.model, 'iat', extract(epoch from $6::timestamptz - interval '30 days')::bigint,
                               'exp', extract(epoch from $6::timestamptz + t.ttl)::bigint, 'clientId', $4::text, 'accountId', 'aac-' || n)
              || case when t.model = 'Grant'
                      then jsonb_build_object('openid', jsonb_build_object('scope', 'openid accounts', 'claims', jsonb_build_array('openbanking_intent_id')))
                      else jsonb_build_object('grantId', 'gr-' || n, 'gty', 'authorization_code', 'scope', 'openid accounts', 'x5t#S256', $5::text,
                                              'authTime', extract(epoch from $6::timestamptz - interval '30 days')::bigint,
                                              'iiat', extract(epoch from $6::timestamptz - interval '30 days')::bigint) end,
            case when t.model = 'Grant' then null else 'gr-' || n end, $6::timestamptz + t.ttl
     from (${gen}) x cross join (values ('gr-', 'Grant', interval '400 days'), ('at-', 'AccessToken', interval '3 days'),
                                        ('rt-', 'RefreshToken', interval '400 days')) t(prefix, model, ttl)`,
    [...params, SANDBOX_OB_CLIENT_ID, thumbprint, tokenNow],
  );
  await c.query(
    `insert into connections (id, user_id, provider_id, connected_on, last_updated, expires_at, user_consented_at, tpp_consent,
                              provider_ref, provider_grant, last_fetch_status, consecutive_failures, last_attempt_at, next_sync_at, created_at)
     select provider_id || ':' || n, 'u-' || n, provider_id, now() - interval '30 days', now() - interval '6 hours',
            now() + interval '60 days', now() - interval '30 days', true, 'aac-' || n,
            jsonb_build_object('consentId', 'aac-' || n, 'accessToken', 'at-' || n,
                               'accessTokenExpiresAt', to_json($4::timestamptz + interval '3 days') #>> '{}', 'refreshToken', 'rt-' || n,
                               'authTime', to_json($4::timestamptz - interval '30 days') #>> '{}'),
            'success', 0, now() - interval '6 hours', null, now() - interval '30 days'
     from (${gen}) x`,
    [...params, tokenNow],
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
