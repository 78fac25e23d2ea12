-- Mooring's system of record. Times are timestamptz in UTC; ids are text chosen by the application.

create table settings (
  key text primary key,
  value jsonb not null,
  updated_at timestamptz not null default now()
);

-- Everything oidc-provider persists (clients, grants, codes, tokens, sessions, interactions).
create table oidc_models (
  kind text not null,
  id text not null,
  payload jsonb not null,
  grant_id text,
  uid text,
  user_code text,
  expires_at timestamptz,
  consumed_at timestamptz,
  primary key (kind, id)
);
create index oidc_models_grant on oidc_models (grant_id) where grant_id is not null;
create index oidc_models_uid on oidc_models (uid) where uid is not null;
create index oidc_models_expires on oidc_models (expires_at) where expires_at is not null;

create table users (
  id text primary key,
  client_id text not null,
  client_user_id text,
  user_type text not null,
  scopes text not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  last_accessed timestamptz
);
create index users_client_created on users (client_id, created_at, id);

-- Operator overrides of the provider catalog: retirement and declared outages.
create table provider_overrides (
  provider_id text primary key,
  retired_at timestamptz,
  outage_until timestamptz
);

create table connections (
  id text primary key,
  user_id text not null references users (id) on delete cascade,
  provider_id text not null,
  connected_on timestamptz not null,
  last_updated timestamptz,
  expires_at timestamptz,
  user_consented_at timestamptz not null,
  tpp_consent boolean not null,
  -- The provider's reference for this grant (consent id, credential id); never a secret.
  provider_ref text,
  -- Adapter-specific grant material (tokens). Never returned by the API, never logged.
  provider_grant jsonb not null default '{}',
  last_fetch_status text,
  consecutive_failures integer not null default 0,
  -- When the connection entered its current (error) state; drives escalation of remediation.
  state_since timestamptz,
  last_attempt_at timestamptz,
  next_sync_at timestamptz,
  created_at timestamptz not null
);
create index connections_user on connections (user_id, created_at);
create index connections_due on connections (next_sync_at) where next_sync_at is not null;
create index connections_provider on connections (provider_id);

-- Links an OpenID grant to the connection its journey created or repaired (for the ID token's mh:con_id).
create table grant_connections (
  grant_id text primary key,
  connection_id text not null,
  sync_id text,
  created_at timestamptz not null default now()
);

create table accounts (
  id uuid primary key,
  connection_id text not null references connections (id) on delete cascade,
  user_id text not null,
  provider_account_id text not null,
  account_name text not null,
  type text not null,
  account_type text not null,
  currency text not null,
  balance_minor bigint not null,
  balance_date timestamptz not null,
  provider_reference text,
  account_reference text,
  details jsonb not null default '{}',
  created_at timestamptz not null,
  updated_at timestamptz not null,
  unique (connection_id, provider_account_id)
);
create index accounts_user on accounts (user_id);

create table transactions (
  id uuid primary key,
  account_id uuid not null references accounts (id) on delete cascade,
  user_id text not null,
  provider_transaction_id text not null,
  amount_minor bigint not null,
  currency text not null,
  date timestamptz not null,
  status text not null,
  short_description text not null,
  long_description text not null,
  category_id text,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  unique (account_id, provider_transaction_id)
);
create index transactions_user_date on transactions (user_id, date desc, id);

create table syncs (
  id uuid primary key,
  connection_id text not null references connections (id) on delete cascade,
  user_id text not null,
  provider_id text not null,
  action text not null,
  method text not null,
  state text not null,
  attended boolean not null default false,
  fetch_status text,
  created_at timestamptz not null,
  fetched_at timestamptz,
  finished_at timestamptz,
  counts jsonb not null default '{"accounts":0,"transactionsAdded":0,"transactionsUpdated":0}',
  error_detail text,
  accounts jsonb not null default '[]'
);
create index syncs_connection on syncs (connection_id, created_at desc);
create index syncs_provider_finished on syncs (provider_id, finished_at);

-- A browser journey (connect, reauth, reconsent, refresh) in progress, keyed by the OpenID interaction.
create table journeys (
  uid text primary key,
  client_id text not null,
  user_id text,
  kind text not null,
  -- The scope the client asked for; the grant given at the end covers it.
  scope text not null,
  provider_id text,
  connection_id text,
  consent_expires_at timestamptz,
  enable_async boolean not null default false,
  step text not null,
  provider_state text,
  pending jsonb not null default '{}',
  created_at timestamptz not null,
  updated_at timestamptz not null
);
