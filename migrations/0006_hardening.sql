-- Bumped whenever a journey replaces a connection's provider grant; a sync that started with an
-- older grant must not write its result (its grant may be revoked, its outcome is stale).
alter table connections add column grant_version integer not null default 0;
create index webhook_events_client_due on webhook_events (client_id, next_attempt_at) where next_attempt_at is not null;
create index journeys_updated on journeys (updated_at);
