-- A provider's status.auth (SPEC section 5) is measured over the connect and repair journeys that
-- reached it and finished in the last hour. auth_outcome is 'granted' (the provider granted access)
-- or 'failed' (the provider or the way to it failed: down, an unreadable answer, a time-out); it
-- stays null for journeys the provider never saw or that ended with the user (declined, refused or
-- abandoned at the bank, wrong credentials) and for Mooring's own failures, none of which say
-- anything about the provider. The catalog reads the last hour by this partial index alone.
alter table journeys add column auth_outcome text;
create index journeys_auth_outcome on journeys (updated_at) include (provider_id, auth_outcome) where auth_outcome is not null;
