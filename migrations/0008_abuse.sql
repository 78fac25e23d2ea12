-- Operator sessions of the /admin page. Only a hash of the session id is stored, so a copy of the
-- table signs no one in; a row is the session: signing out deletes it, and it lapses when idle.
create table admin_sessions (
  id_hash text primary key,
  created_at timestamptz not null,
  last_seen_at timestamptz not null,
  expires_at timestamptz not null
);
create index admin_sessions_expires_at on admin_sessions (expires_at);
