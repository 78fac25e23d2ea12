/**
 * Seeds the bench database directly with SQL (generate_series), so the tables are big enough for
 * realistic query plans: 100,000 users of the bench client with about one connection each (every
 * tenth user has two), one account and one sync per background connection, and the target user
 * with 5 connections (different provider types) holding 3 accounts and 4 syncs each.
 */
import type pg from 'pg';

export interface SeedSpec {
  clientId: string;
  /** Catalog provider ids to spread connections over. */
  providerIds: string[];
  /** Providers of the target user's 5 connections. */
  targetProviderIds: string[];
  targetUserId: string;
  users: number;
}

export interface SeedCounts {
  users: number;
  connections: number;
  accounts: number;
  syncs: number;
}

const SCOPES = 'user:read user:create user:update user:delete';

export async function seed(c: pg.Client, spec: SeedSpec, progress: (msg: string) => void): Promise<SeedCounts> {
  const step = async (label: string, sql: string, params: unknown[] = []): Promise<void> => {
    const t = performance.now();
    const r = await c.query(sql, params);
    progress(`  ${label}: ${r.rowCount ?? 0} rows in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  };

  await step(
    'users',
    `insert into users (id, client_id, client_user_id, user_type, scopes, created_at, updated_at, last_accessed)
     select substr(md5('bench-user-' || g), 1, 24), $1, 'cu-' || g, 'test', $2,
            now() - interval '400 days' + g * interval '5 minutes', now() - interval '1 day', now() - interval '1 day'
     from generate_series(1, $3::int) g`,
    [spec.clientId, SCOPES, spec.users],
  );

  // One connection per user, a second one for every tenth user; providers round-robin over the catalog.
  await step(
    'connections',
    `insert into connections (id, user_id, provider_id, connected_on, last_updated, expires_at, user_consented_at,
                              tpp_consent, provider_ref, provider_grant, last_fetch_status, consecutive_failures,
                              last_attempt_at, next_sync_at, created_at)
     select p.provider_id || ':' || gen_random_uuid(), u.id, p.provider_id,
            u.created_at, now() - interval '6 hours', now() + interval '60 days', u.created_at,
            true, 'ref-' || u.n || '-' || k, '{"accessToken":"x"}', 'success', 0,
            now() - interval '6 hours', now() + interval '1 hour', u.created_at + k * interval '1 minute'
     from (select substr(md5('bench-user-' || g), 1, 24) as id, g as n,
                  now() - interval '400 days' + g * interval '5 minutes' as created_at
           from generate_series(1, $1::int) g) u
     cross join lateral generate_series(1, case when u.n % 10 = 0 then 2 else 1 end) k
     cross join lateral (select ($2::text[])[1 + ((u.n + k) % array_length($2::text[], 1))] as provider_id) p`,
    [spec.users, spec.providerIds],
  );

  await step(
    'accounts',
    `insert into accounts (id, connection_id, user_id, provider_account_id, account_name, type, account_type, currency,
                           balance_minor, balance_date, details, created_at, updated_at)
     select gen_random_uuid(), c.id, c.user_id, 'acc-1', 'Current account', 'cash:current', 'personal', 'GBP',
            123456, now() - interval '6 hours', '{}', c.created_at, now() - interval '6 hours'
     from connections c`,
  );

  await step(
    'syncs',
    `insert into syncs (id, connection_id, user_id, provider_id, action, method, state, attended, fetch_status,
                        created_at, fetched_at, finished_at, accounts)
     select gen_random_uuid(), c.id, c.user_id, c.provider_id, 'auto-update', 'UPDATE', 'done', false, 'success',
            now() - interval '6 hours', now() - interval '6 hours', now() - interval '6 hours', '[]'
     from connections c`,
  );

  // The target user: 5 connections with accounts and a few syncs, in a mix of states.
  await step(
    'target user',
    `insert into users (id, client_id, client_user_id, user_type, scopes, created_at, updated_at, last_accessed)
     values ($1, $2, 'bench-target', 'test', $3, now() - interval '200 days', now(), now())`,
    [spec.targetUserId, spec.clientId, SCOPES],
  );
  await step(
    'target connections',
    `insert into connections (id, user_id, provider_id, connected_on, last_updated, expires_at, user_consented_at,
                              tpp_consent, provider_ref, provider_grant, last_fetch_status, consecutive_failures,
                              state_since, last_attempt_at, next_sync_at, created_at)
     select p.provider_id || ':' || gen_random_uuid(), $1, p.provider_id,
            now() - interval '100 days' + i * interval '1 day',
            now() - (case when i = 3 then interval '3 days' else interval '5 hours' end),
            case when i in (2, 4) then null else now() + interval '40 days' end,
            now() - interval '50 days', i % 2 = 1, 'target-ref-' || i, '{"accessToken":"x"}',
            case i when 5 then 'partial' when 3 then 'error' else 'success' end,
            case when i in (3, 5) then 2 else 0 end,
            case when i in (3, 5) then now() - interval '1 day' end,
            now() - interval '5 hours', now() + interval '1 hour', now() - interval '100 days' + i * interval '1 day'
     from unnest($2::text[]) with ordinality as p(provider_id, i)`,
    [spec.targetUserId, spec.targetProviderIds],
  );
  await step(
    'target accounts',
    `insert into accounts (id, connection_id, user_id, provider_account_id, account_name, type, account_type, currency,
                           balance_minor, balance_date, details, created_at, updated_at)
     select gen_random_uuid(), c.id, c.user_id, 'acc-' || a, 'Account ' || a, 'cash:current', 'personal', 'GBP',
            100000 * a, now() - interval '5 hours', '{}', c.created_at + a * interval '1 second', now() - interval '5 hours'
     from connections c cross join generate_series(1, 3) a
     where c.user_id = $1`,
    [spec.targetUserId],
  );
  await step(
    'target syncs',
    `insert into syncs (id, connection_id, user_id, provider_id, action, method, state, attended, fetch_status,
                        created_at, fetched_at, finished_at, accounts)
     select gen_random_uuid(), c.id, c.user_id, c.provider_id,
            case when s = 2 then 'client-update' else 'auto-update' end,
            case when s = 1 then 'ADD' else 'UPDATE' end, 'done', s = 2,
            case when s = 4 then coalesce(c.last_fetch_status, 'success') else 'success' end,
            now() - (5 - s) * interval '6 hours', now() - (5 - s) * interval '6 hours', now() - (5 - s) * interval '6 hours', '[]'
     from connections c cross join generate_series(1, 4) s
     where c.user_id = $1`,
    [spec.targetUserId],
  );

  const t = performance.now();
  await c.query('vacuum analyze');
  progress(`  vacuum analyze in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const counts = await c.query<{ users: string; connections: string; accounts: string; syncs: string }>(
    `select (select count(*) from users) as users, (select count(*) from connections) as connections,
            (select count(*) from accounts) as accounts, (select count(*) from syncs) as syncs`,
  );
  const row = counts.rows[0];
  if (row === undefined) throw new Error('no counts');
  return { users: Number(row.users), connections: Number(row.connections), accounts: Number(row.accounts), syncs: Number(row.syncs) };
}
