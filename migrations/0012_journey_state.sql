-- Every redirect-based provider returns the user to one fixed URL, /connect/callback (SPEC section 10):
-- the journey is found by the state Mooring gave the provider.
create index journeys_provider_state on journeys (provider_state) where provider_state is not null;
