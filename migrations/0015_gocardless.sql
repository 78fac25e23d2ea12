-- GoCardless Bank Account Data (SPEC section 10).

-- The token pair Mooring holds at GoCardless, one row per provider entry, shared by every process
-- (API and workers): `/token/new/` allows 100 calls an hour, so no process may issue its own.
-- `sealed` is the pair as sealed JSON (src/crypto); the expiries (real time, the upstream's) are
-- plain so a process can tell without opening it whether it is usable. `issuing_until` is a lease:
-- the process that sets it (compare-and-set) is the only one calling GoCardless for a new pair.
create table gocardless_tokens (
  provider_id text primary key,
  sealed text,
  access_expires_at timestamptz,
  refresh_expires_at timestamptz,
  issuing_until timestamptz,
  updated_at timestamptz not null
);

-- What the upstream says about its own per-account daily limit (GoCardless's
-- ACCOUNT_SUCCESS rate-limit headers): the fewest successful calls left for any account and scope
-- of the connection, and when that window resets (domain clock). Null: the upstream said nothing.
alter table connections add column upstream_budget_remaining integer;
alter table connections add column upstream_budget_resets_at timestamptz;

-- The GoCardless sandbox counterpart's own state (like migrations/0002_sandbox_banks.sql, these
-- tables belong to the mock upstream). Business times follow the domain clock; token lifetimes
-- are real time, as GoCardless's are.
create table sandbox_gc_tokens (
  jti text primary key,
  -- access or refresh; `via` new (POST /token/new/) or refresh (POST /token/refresh/).
  kind text not null,
  via text not null,
  secret_id text not null,
  issued_at timestamptz not null default now()
);

create table sandbox_gc_agreements (
  id text primary key,
  institution_id text not null,
  max_historical_days integer not null,
  access_valid_for_days integer not null,
  access_scope jsonb not null,
  created_at timestamptz not null,
  accepted_at timestamptz
);

create table sandbox_gc_requisitions (
  id text primary key,
  institution_id text not null,
  agreement_id text not null references sandbox_gc_agreements (id) on delete cascade,
  redirect text not null,
  reference text,
  user_language text,
  -- CR, GC, UA, RJ, SA, GA, LN, EX, SU (GoCardless's requisition statuses).
  status text not null,
  username text,
  behaviour text,
  created_at timestamptz not null,
  linked_at timestamptz,
  -- Syncs seen by the upstream: one per metadata call of the requisition's first account.
  fetch_count integer not null default 0
);
create index sandbox_gc_requisitions_reference on sandbox_gc_requisitions (reference);

create table sandbox_gc_accounts (
  id text primary key,
  requisition_id text not null references sandbox_gc_requisitions (id) on delete cascade,
  position integer not null
);
create index sandbox_gc_accounts_requisition on sandbox_gc_accounts (requisition_id);

-- Successful account-data calls, per account and scope (details, balances, transactions): the
-- institution's limit of 4 a day counts these.
create table sandbox_gc_calls (
  account_id text not null references sandbox_gc_accounts (id) on delete cascade,
  scope text not null,
  at timestamptz not null
);
create index sandbox_gc_calls_account on sandbox_gc_calls (account_id, scope, at);
