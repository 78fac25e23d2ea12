-- One queue for syncs: the syncs table. A queued sync's lease_until is the time from which a
-- worker may claim it; a running sync's is its lease. pg-boss no longer carries syncs (its
-- pgboss schema, if any, is left in place and unused).
create index syncs_queued_due on syncs (lease_until) where state = 'queued';
create index syncs_running_provider on syncs (provider_id, lease_until) where state = 'running';
