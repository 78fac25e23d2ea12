-- Each operator session records which admin token it was signed in with: a fingerprint (a SHA-256
-- of the token under a fixed label, never the token). A session whose fingerprint is not the
-- running token's (the token was changed, or the session predates this column) is signed out.
alter table admin_sessions add column token_fingerprint text;
