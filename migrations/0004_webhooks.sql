-- Webhooks: one endpoint per API client; every event is kept in a log the client can list and
-- replay; deliveries are attempted until they succeed or 24 hours have passed.

create table webhook_endpoints (
  client_id text primary key,
  url text not null,
  secret text not null,
  created_at timestamptz not null,
  updated_at timestamptz not null
);

create table webhook_events (
  id uuid primary key,
  client_id text not null,
  user_id text not null,
  event_type text not null,
  payload jsonb not null,
  -- Identifies the real change behind the event, so the same change never makes two events.
  dedupe_key text unique,
  created_at timestamptz not null,
  -- Delivery state; times are the domain clock's, so the sandbox clock drives retries too.
  next_attempt_at timestamptz,
  attempts integer not null default 0,
  delivered_at timestamptz,
  gave_up_at timestamptz
);
create index webhook_events_client on webhook_events (client_id, created_at desc);
create index webhook_events_due on webhook_events (next_attempt_at) where next_attempt_at is not null;

create table webhook_deliveries (
  id uuid primary key,
  event_id uuid not null references webhook_events (id) on delete cascade,
  at timestamptz not null,
  status text not null,
  response_code integer,
  error text,
  duration_ms integer
);
create index webhook_deliveries_event on webhook_deliveries (event_id, at);

-- What the client was last told about each connection, and when reminders were last sent.
alter table connections add column notified_state text;
alter table connections add column reauth_reminded_at timestamptz;
alter table connections add column refresh_reminded_at timestamptz;
create index connections_expiry on connections (expires_at) where expires_at is not null;
create index connections_last_updated on connections (last_updated);
-- The next moment a connection's status can change by time alone (consent expiry, staleness).
alter table connections add column notify_check_at timestamptz;
create index connections_notify_check on connections (notify_check_at) where notify_check_at is not null;
