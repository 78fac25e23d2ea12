-- The console's provider page groups a provider's recent failed syncs by error: read newest first
-- along this index (failures only), so the page costs the failures it shows, not the syncs of a day.
create index syncs_provider_failures on syncs (provider_id, finished_at desc) where state = 'done' and fetch_status <> 'success';
