-- The sync engine: a sync is queued, claimed under a lease, run, and done. A lease that runs out
-- (the process running it died) sends the sync back to the queue; at most one sync per connection
-- is ever queued or running.

alter table syncs add column lease_until timestamptz;
alter table syncs add column attempts integer not null default 0;
-- The customer's IP address for an attended sync, kept only until the sync is done.
alter table syncs add column customer_ip text;

create unique index syncs_one_active on syncs (connection_id) where state <> 'done';
create index syncs_active_lease on syncs (lease_until) where state <> 'done';
create index syncs_unattended on syncs (connection_id, created_at) where not attended;
