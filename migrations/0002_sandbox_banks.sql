-- The sandbox banks' own state (SPEC section 7). These tables belong to the mock banks, not to
-- Mooring's system of record: Mooring reaches them only over HTTP, as it would a real provider.
-- Business times (created, authorised, expiry) are domain-clock times; token expiries are real time.

-- Open Banking account-access consents.
create table sandbox_consents (
  id text primary key,
  provider_id text not null,
  permissions jsonb not null,
  -- AwaitingAuthorisation, Authorised, Rejected or Revoked (UK OB v3.1 statuses).
  status text not null,
  expires_at timestamptz,
  -- The username typed on the bank's login page, and the behaviour it picked (SANDBOX_USERNAMES).
  username text,
  behaviour text,
  created_at timestamptz not null,
  status_updated_at timestamptz not null,
  authorised_at timestamptz,
  -- Syncs seen by the bank: one per accounts-list call.
  fetch_count integer not null default 0
);
create index sandbox_consents_provider on sandbox_consents (provider_id);

-- Authorisation codes, access, refresh and client tokens, legacy credential tokens and one-time-code
-- challenges. Only a hash of each token is kept.
create table sandbox_tokens (
  token_hash text primary key,
  kind text not null,
  provider_id text not null,
  -- The consent or credential the token is bound to (none for client tokens).
  subject_id text,
  redirect_uri text,
  expires_at timestamptz not null,
  consumed_at timestamptz,
  created_at timestamptz not null default now()
);
create index sandbox_tokens_subject on sandbox_tokens (subject_id);

-- Legacy (credential-based) provider logins.
create table sandbox_credentials (
  id text primary key,
  provider_id text not null,
  username text not null,
  behaviour text not null,
  -- awaiting_otp, active or revoked.
  status text not null,
  created_at timestamptz not null,
  authorised_at timestamptz,
  otp_attempts integer not null default 0,
  fetch_count integer not null default 0
);
create index sandbox_credentials_provider on sandbox_credentials (provider_id);

-- Assets a valuation provider tracks: a property (postcode + house number) or a vehicle (registration).
create table sandbox_valuation_assets (
  id text primary key,
  provider_id text not null,
  asset_kind text not null,
  postcode text,
  house_number text,
  registration text,
  behaviour text not null,
  -- active or removed.
  status text not null,
  created_at timestamptz not null,
  fetch_count integer not null default 0
);
create index sandbox_valuation_assets_provider on sandbox_valuation_assets (provider_id);
