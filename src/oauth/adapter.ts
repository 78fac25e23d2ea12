/**
 * Persists everything oidc-provider stores (clients, grants, codes, tokens, sessions, interactions)
 * in the `oidc_models` table, so it survives restarts and is shared by every API process.
 *
 * Nothing stored here is usable as it stands: a model whose id is a bearer value (a token, a code,
 * a session cookie) is stored under the SHA-256 of its id, without the id in its payload; a
 * session keeps its id only sealed (oidc-provider finds sessions by uid too); a client's secret
 * is sealed, since secret-based client authentication needs it back.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Db } from '../db/db.ts';
import { hashSecret, SecretError, type SecretBox } from '../crypto/secrets.ts';

/** Where a client's secret is sealed: the context binding it to its row. */
export const clientSecretContext = (clientId: string): string => `oidc_models.Client.client_secret:${clientId}`;
/** Where a session's id is sealed (bound to the session's uid, which oidc-provider also finds it by). */
export const sessionIdContext = (uid: string): string => `oidc_models.Session.jti:${uid}`;
/** The sandbox Open Banking banks' namespaces (`sandbox-ob/<slug>`; their sessions' kind is `<namespace>:Session`). */
const SANDBOX_OB_KIND_PREFIX = 'sandbox-ob/';
export const sandboxObNamespace = (slug: string): string => `${SANDBOX_OB_KIND_PREFIX}${slug}`;

/** Models stored under their own id: a client id is public. */
const PLAIN_ID_KINDS: ReadonlySet<string> = new Set(['Client']);

function toStored(kind: string, id: string, payload: AdapterPayload, box: SecretBox): { storedId: string; payload: AdapterPayload } {
  if (PLAIN_ID_KINDS.has(kind)) {
    const secret = payload.client_secret;
    const clientId = payload.client_id ?? id;
    return { storedId: id, payload: typeof secret === 'string' ? { ...payload, client_secret: box.seal(secret, clientSecretContext(clientId)) } : payload };
  }
  const storedId = hashSecret(id);
  const { jti: _jti, ...rest } = payload;
  const stored: AdapterPayload = rest;
  if (kind === 'Session' && typeof payload.uid === 'string') stored.jti = box.seal(id, sessionIdContext(payload.uid));
  // An interaction copies the session's cookie value, which oidc-provider never reads back.
  if (kind === 'Interaction' && stored.session !== undefined) {
    const { cookie: _cookie, ...session } = stored.session;
    stored.session = session as AdapterPayload['session'];
  }
  return { storedId, payload: stored };
}

function fromStored(kind: string, lookedUpBy: string | null, payload: AdapterPayload, box: SecretBox): AdapterPayload | undefined {
  try {
    if (PLAIN_ID_KINDS.has(kind)) {
      const secret = payload.client_secret;
      const clientId = payload.client_id;
      // A secret not sealed yet was stored by an earlier version; start-up seals it.
      if (typeof secret !== 'string' || typeof clientId !== 'string' || !box.isSealed(secret)) return payload;
      return { ...payload, client_secret: box.open(secret, clientSecretContext(clientId)) };
    }
    if (lookedUpBy !== null) return { ...payload, jti: lookedUpBy };
    const { jti: sealed, uid } = payload;
    return kind === 'Session' && typeof sealed === 'string' && typeof uid === 'string' ? { ...payload, jti: box.open(sealed, sessionIdContext(uid)) } : undefined;
  } catch (err) {
    // A session sealed under a key no longer configured is as good as gone (the user signs in again);
    // a client's secret is not: that error reaches the log, naming the missing key.
    if (err instanceof SecretError && kind === 'Session') return undefined;
    throw err;
  }
}

/**
 * `namespace` keeps another oidc-provider instance's models apart in the same table (the sandbox
 * banks store theirs as `<namespace>:<kind>`).
 */
export function oidcAdapterFactory(db: Db, box: SecretBox, namespace?: string): (name: string) => Adapter {
  return (kind: string): Adapter => {
    const rowKind = namespace === undefined ? kind : `${namespace}:${kind}`;
    const storedIdOf = (id: string): string => (PLAIN_ID_KINDS.has(kind) ? id : hashSecret(id));
    const find = async (column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> => {
      // Values come from requests; one PostgreSQL cannot store cannot name anything stored either.
      if (value.includes('\u0000')) return undefined;
      const key = column === 'id' ? storedIdOf(value) : value;
      const r = await db.query<{ payload: AdapterPayload; consumed: boolean }>(
        `select payload, consumed_at is not null as consumed from oidc_models
          where kind = $1 and ${column} = $2 and (expires_at is null or expires_at > now())`,
        [rowKind, key],
      );
      const row = r.rows[0];
      if (row === undefined) return undefined;
      const payload = fromStored(kind, column === 'id' ? value : null, row.payload, box);
      if (payload === undefined) return undefined;
      return row.consumed ? { ...payload, consumed: true } : payload;
    };
    return {
      async upsert(id, payload, expiresIn) {
        const stored = toStored(kind, id, payload, box);
        await db.query(
          `insert into oidc_models (kind, id, payload, grant_id, uid, user_code, expires_at)
           values ($1, $2, $3, $4, $5, $6, case when $7::int is null then null else now() + make_interval(secs => $7::int) end)
           on conflict (kind, id) do update set payload = excluded.payload, grant_id = excluded.grant_id,
             uid = excluded.uid, user_code = excluded.user_code, expires_at = excluded.expires_at`,
          [rowKind, stored.storedId, JSON.stringify(stored.payload), payload.grantId ?? null, payload.uid ?? null, payload.userCode ?? null, expiresIn ?? null],
        );
      },
      find: (id) => find('id', id),
      findByUid: (uid) => find('uid', uid),
      findByUserCode: (userCode) => find('user_code', userCode),
      async consume(id) {
        await db.query('update oidc_models set consumed_at = now() where kind = $1 and id = $2', [rowKind, storedIdOf(id)]);
      },
      async destroy(id) {
        await db.query('delete from oidc_models where kind = $1 and id = $2', [rowKind, storedIdOf(id)]);
      },
      async revokeByGrantId(grantId) {
        await db.query('delete from oidc_models where grant_id = $1', [grantId]);
      },
    };
  };
}

/** Rows deleted per purge statement, so a large backlog never holds long locks. */
const PURGE_BATCH = 5000;

/**
 * Deletes expired rows (one per API call, since the official client fetches a token per call), in
 * batches. Returns how many were removed.
 */
export async function purgeExpiredOidcModels(db: Db): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await db.query(
      `delete from oidc_models where (kind, id) in (
         select kind, id from oidc_models where expires_at < now() - interval '1 minute' limit $1)`,
      [PURGE_BATCH],
    );
    total += r.rowCount;
    if (r.rowCount < PURGE_BATCH) return total;
  }
}
