/**
 * Operator sessions (hashed ids only; times are real time, passed in: sessions are a security
 * timer) and the counts the operator overview shows.
 */
import type { Queryable } from '../db/db.ts';

export function adminSessionsRepository(db: Queryable) {
  return {
    async create(idHash: string, tokenFingerprint: string, now: Date, expiresAt: Date): Promise<void> {
      await db.query('insert into admin_sessions (id_hash, token_fingerprint, created_at, last_seen_at, expires_at) values ($1, $2, $3, $3, $4)', [idHash, tokenFingerprint, now, expiresAt]);
    },
    /**
     * Extends a live session signed in under the token of `tokenFingerprint` to `expiresAt` (not past
     * `createdAfter` + its absolute limit); false when there is none.
     */
    async touch(idHash: string, tokenFingerprint: string, now: Date, expiresAt: Date, createdAfter: Date): Promise<boolean> {
      const r = await db.query(
        'update admin_sessions set last_seen_at = $3, expires_at = $4 where id_hash = $1 and token_fingerprint = $2 and expires_at > $3 and created_at > $5',
        [idHash, tokenFingerprint, now, expiresAt, createdAfter],
      );
      return r.rowCount > 0;
    },
    /** Deletes sessions signed in under another admin token than the one of `tokenFingerprint` (or before fingerprints were kept). */
    async removeOtherTokens(tokenFingerprint: string): Promise<number> {
      return (await db.query('delete from admin_sessions where token_fingerprint is distinct from $1', [tokenFingerprint])).rowCount;
    },
    async remove(idHash: string): Promise<void> {
      await db.query('delete from admin_sessions where id_hash = $1', [idHash]);
    },
    async purgeExpired(now: Date): Promise<number> {
      return (await db.query('delete from admin_sessions where expires_at <= $1', [now])).rowCount;
    },
  };
}

/** Read-only counts across features for the operator overview (provider health counts live in providers/repository.ts). */
export function adminOverviewRepository(db: Queryable) {
  return {
    async connectionsPerProvider(): Promise<Map<string, number>> {
      const r = await db.query<{ provider_id: string; n: string }>('select provider_id, count(*) as n from connections group by provider_id');
      return new Map(r.rows.map((x) => [x.provider_id, Number(x.n)]));
    },
    async connectionsByLastFetchStatus(): Promise<{ status: string | null; n: number }[]> {
      const r = await db.query<{ status: string | null; n: string }>('select last_fetch_status as status, count(*) as n from connections group by last_fetch_status');
      return r.rows.map((x) => ({ status: x.status, n: Number(x.n) }));
    },
    /**
     * Connections not ok (error or never), counted by state as last told to their client
     * (notified_state, `status:error:extendedStatus`) and provider: the partial index connections_not_ok,
     * so the cost follows the connections in error, not the whole table.
     */
    async connectionsNotOk(): Promise<{ state: string; provider_id: string; n: number }[]> {
      const r = await db.query<{ state: string; provider_id: string; n: number }>(
        `select notified_state as state, provider_id, count(*)::int as n from connections
          where notified_state <> 'ok::' group by notified_state, provider_id order by n desc, notified_state, provider_id`,
      );
      return r.rows;
    },
    async connectionsWithConsentExpired(now: Date): Promise<number> {
      const r = await db.query<{ n: string }>('select count(*) as n from connections where expires_at <= $1', [now]);
      return Number(r.rows[0]?.n ?? 0);
    },
    async unfinishedSyncsByState(): Promise<{ state: string; n: number }[]> {
      const r = await db.query<{ state: string; n: string }>(`select state, count(*) as n from syncs where state <> 'done' group by state`);
      return r.rows.map((x) => ({ state: x.state, n: Number(x.n) }));
    },
    async webhookBacklog(): Promise<{ pending: number; abandoned: number }> {
      const r = await db.query<{ pending: string; abandoned: string }>(
        'select count(*) filter (where next_attempt_at is not null) as pending, count(*) filter (where gave_up_at is not null) as abandoned from webhook_events',
      );
      return { pending: Number(r.rows[0]?.pending ?? 0), abandoned: Number(r.rows[0]?.abandoned ?? 0) };
    },
    async clients(): Promise<{ id: string; name: string | null; users: number; url: string | null }[]> {
      const r = await db.query<{ id: string; name: string | null; users: string; url: string | null }>(
        `select m.id, m.payload->>'client_name' as name, (select count(*) from users u where u.client_id = m.id) as users,
                (select url from webhook_endpoints w where w.client_id = m.id) as url
           from oidc_models m where m.kind = 'Client' order by m.id`,
      );
      return r.rows.map((x) => ({ id: x.id, name: x.name, users: Number(x.users), url: x.url }));
    },
  };
}
