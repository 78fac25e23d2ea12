-- An upstream's 429 (SPEC section 10): no call for the connection goes to its provider before
-- this time (the reset the provider gave, or the next scheduled sync when it gave none). A sync
-- that met a 429 is recorded with fetch_status 'rate-limited' and never becomes the connection's
-- last_fetch_status.
alter table connections add column rate_limited_until timestamptz;
