-- Auth requests: a server-side way to run the journeys (Moneyhub's /auth-requests API).
create table auth_requests (
  id uuid primary key,
  client_id text not null,
  user_id text,
  scope text not null,
  bank_id text,
  connection_id text,
  redirect_uri text not null,
  state text not null,
  nonce text not null,
  auth_url text not null,
  status text not null,
  error text,
  created_at timestamptz not null,
  completed_at timestamptz
);
create index auth_requests_client on auth_requests (client_id, created_at desc);
