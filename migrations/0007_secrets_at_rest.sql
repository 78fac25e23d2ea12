-- Secrets at rest (SPEC section 1, MOORING_ENCRYPTION_KEY). oidc-provider models whose id is a
-- bearer value (access, refresh and client-credentials tokens, codes, grants, PAR request URIs)
-- are now kept under the SHA-256 of the id (base64url, as src/crypto/secrets.ts hashSecret), and
-- their payload no longer carries the id (`jti`). Existing rows are converted in place, so issued
-- tokens keep working. Sessions and interactions are deleted instead: a session must keep its id
-- sealed, which SQL cannot do (users sign in to a journey again; both are short-lived).
-- Provider grants, client secrets and webhook secrets are sealed by the server at start-up: only
-- it holds the key.
delete from oidc_models where kind in ('Session', 'Interaction');

update oidc_models
   set id = rtrim(translate(encode(sha256(convert_to(id, 'UTF8')), 'base64'), '+/', '-_'), '='),
       payload = payload - 'jti'
 where kind <> 'Client';
