-- The operator console: a connection's status history, and the indexes its search, overview and
-- timeline read by (each an index range for one connection, user, name prefix or error group).

-- Every status change of a connection, as its client was told it (connections.notified_state),
-- written in the transaction that detected the change (connections/status-change.ts). from_state
-- is null for the first state a connection had.
create table connection_status_changes (
  id bigserial primary key,
  connection_id text not null references connections (id) on delete cascade,
  at timestamptz not null,
  from_state text,
  to_state text not null,
  remediation_action text not null
);
create index connection_status_changes_connection on connection_status_changes (connection_id, at desc, id desc);

-- Connections not ok (error or never) by their state and provider: the overview's error groups
-- and their lists cost what is in error, not the whole table. notified_state is kept current by
-- the status-change recorder and the time-driven event sweep.
create index connections_not_ok on connections (notified_state, provider_id, id) where notified_state <> 'ok::';

-- A connection's journeys (connect, reauth, reconsent, refresh), newest first.
create index journeys_connection on journeys (connection_id, created_at desc) where connection_id is not null;

-- A connection's webhook events (their payload names it).
create index webhook_events_connection on webhook_events ((payload->>'connectionId'), created_at desc) where payload ? 'connectionId';

-- Search: users by clientUserId (exact or prefix), API clients by name prefix (case-insensitive).
create index users_client_user_id on users ((client_user_id collate "C")) where client_user_id is not null;
create index oidc_models_client_name on oidc_models ((lower(payload->>'client_name') collate "C")) where kind = 'Client';

-- Journeys are purged a day after their last step (server.ts); the purge keeps, for the
-- console's timeline, what an operator needs of those that concern a connection: kind, outcome
-- (the last step) and times. Nothing of the journey's pending state or provider state is kept.
create table journey_history (
  uid text primary key,
  connection_id text not null references connections (id) on delete cascade,
  client_id text not null,
  kind text not null,
  step text not null,
  provider_id text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index journey_history_connection on journey_history (connection_id, created_at desc);
