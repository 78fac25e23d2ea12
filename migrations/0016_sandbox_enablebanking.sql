-- The Enable Banking sandbox counterpart's own state (SPEC section 10, sandbox). Like the other
-- sandbox banks' tables it belongs to the mock service, not to Mooring's system of record: Mooring
-- reaches it only over HTTP. Business times (created, authorised, valid_until) are domain-clock times.

-- One authorisation (POST /auth) and, once its code is exchanged (POST /sessions), its session.
create table sandbox_eb_sessions (
  -- The authorization_id POST /auth answered.
  id text primary key,
  -- The session_id POST /sessions answered (null until then).
  session_id text unique,
  -- The application (the kid of its JWTs) that started it; only it may read or close the session.
  application_id text not null,
  aspsp_name text not null,
  aspsp_country text not null,
  psu_type text not null,
  -- SessionStatus: PENDING_AUTHORIZATION, RETURNED_FROM_BANK, AUTHORIZED, EXPIRED, REVOKED, CANCELLED, CLOSED or INVALID.
  status text not null,
  valid_until timestamptz not null,
  redirect_url text not null,
  state text not null,
  -- The username typed on the bank's login page, and the behaviour it picked (SANDBOX_USERNAMES).
  username text,
  behaviour text,
  created_at timestamptz not null,
  authorized_at timestamptz,
  closed_at timestamptz,
  -- Syncs seen by the bank: one per balances call of the session's first account.
  fetch_count integer not null default 0
);

-- The account uids of a session (valid only while it is AUTHORIZED), in the session's order.
create table sandbox_eb_accounts (
  uid text primary key,
  session_id text not null references sandbox_eb_sessions (session_id) on delete cascade,
  position integer not null
);
create index sandbox_eb_accounts_session on sandbox_eb_accounts (session_id);
