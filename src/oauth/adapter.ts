/**
 * Persists everything oidc-provider stores (clients, grants, codes, tokens, sessions, interactions)
 * in the `oidc_models` table, so it survives restarts and is shared by every API process.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Db } from '../db/db.ts';

export function oidcAdapterFactory(db: Db): (name: string) => Adapter {
  return (kind: string): Adapter => {
    const find = async (column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> => {
      // Values come from requests; one PostgreSQL cannot store cannot name anything stored either.
      if (value.includes('\u0000')) return undefined;
      const r = await db.query<{ payload: AdapterPayload; consumed: boolean }>(
        `select payload, consumed_at is not null as consumed from oidc_models
          where kind = $1 and ${column} = $2 and (expires_at is null or expires_at > now())`,
        [kind, value],
      );
      const row = r.rows[0];
      if (row === undefined) return undefined;
      return row.consumed ? { ...row.payload, consumed: true } : row.payload;
    };
    return {
      async upsert(id, payload, expiresIn) {
        await db.query(
          `insert into oidc_models (kind, id, payload, grant_id, uid, user_code, expires_at)
           values ($1, $2, $3, $4, $5, $6, case when $7::int is null then null else now() + make_interval(secs => $7::int) end)
           on conflict (kind, id) do update set payload = excluded.payload, grant_id = excluded.grant_id,
             uid = excluded.uid, user_code = excluded.user_code, expires_at = excluded.expires_at`,
          [kind, id, JSON.stringify(payload), payload.grantId ?? null, payload.uid ?? null, payload.userCode ?? null, expiresIn ?? null],
        );
      },
      find: (id) => find('id', id),
      findByUid: (uid) => find('uid', uid),
      findByUserCode: (userCode) => find('user_code', userCode),
      async consume(id) {
        await db.query('update oidc_models set consumed_at = now() where kind = $1 and id = $2', [kind, id]);
      },
      async destroy(id) {
        await db.query('delete from oidc_models where kind = $1 and id = $2', [kind, id]);
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
