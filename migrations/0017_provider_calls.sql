-- Every HTTP call Mooring makes to a provider (the operator console's call log): when it started
-- (domain time), for which connection and sync or journey, the endpoint as a path template of the
-- provider's API (never ids, query values, bodies or secrets), the status (null: no answer), the
-- measured latency and the ProviderErrorKind the call resulted in (null: success). Rows are written
-- in batches by each process (src/provider-calls/writer.ts) and pruned after
-- MOORING_PROVIDER_CALL_RETENTION_DAYS in bounded batches along provider_calls_at.
-- No foreign keys: the log outlives deleted connections and syncs and never slows their writes.
create table provider_calls (
  id bigint generated always as identity primary key,
  at timestamptz not null,
  provider_id text not null,
  connection_id text,
  sync_id uuid,
  journey_id text,
  method text not null,
  endpoint text not null,
  status integer,
  latency_ms integer not null,
  error_kind text,
  interaction_id text
);
-- A connection's calls, newest first (keyset on at, id).
create index provider_calls_connection on provider_calls (connection_id, at desc, id desc) where connection_id is not null;
-- A provider's calls, newest first; and the same filtered by status or error kind.
create index provider_calls_provider on provider_calls (provider_id, at desc, id desc);
create index provider_calls_provider_status on provider_calls (provider_id, status, at desc, id desc);
create index provider_calls_provider_error on provider_calls (provider_id, error_kind, at desc, id desc) where error_kind is not null;
-- Pruning by time, and all calls newest first.
create index provider_calls_at on provider_calls (at, id);

-- The hourly rollup behind GET /admin/api/providers/:id/health, added to by the same batch writer:
-- one row per provider, hour, subject and outcome. Calls: outcome 'ok' or the error kind, with a
-- latency histogram (counts per bucket of PROVIDER_CALL_LATENCY_BUCKETS_MS, the last one open);
-- syncs: outcome the sync's fetch status. Pruned with the calls (kept for the health window).
create table provider_call_hours (
  provider_id text not null,
  hour timestamptz not null,
  subject text not null check (subject in ('call', 'sync')),
  outcome text not null,
  n bigint not null,
  latency_buckets integer[],
  primary key (provider_id, hour, subject, outcome)
);
create index provider_call_hours_hour on provider_call_hours (hour);

-- The age of the oldest webhook event awaiting delivery (a /metrics gauge) without a scan.
create index webhook_events_pending_created on webhook_events (created_at) where next_attempt_at is not null;
