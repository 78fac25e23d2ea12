-- A sync that Mooring itself could not complete (its database failed, or a bug) after every
-- retry: it ends `done` / `error` so the record keeps Moneyhub's shape, but it is Mooring's
-- failure, not the provider's, so it counts in no provider health, back-off or failure streak.
alter table syncs add column internal_failure boolean not null default false;
