/** Operator sessions (hashed ids only). Times are real time, passed in: sessions are a security timer. */
import type { Queryable } from '../db/db.ts';

export function adminSessionsRepository(db: Queryable) {
  return {
    async create(idHash: string, now: Date, expiresAt: Date): Promise<void> {
      await db.query('insert into admin_sessions (id_hash, created_at, last_seen_at, expires_at) values ($1, $2, $2, $3)', [idHash, now, expiresAt]);
    },
    /** Extends a live session to `expiresAt` (not past `createdAfter` + its absolute limit); false when there is none. */
    async touch(idHash: string, now: Date, expiresAt: Date, createdAfter: Date): Promise<boolean> {
      const r = await db.query(
        'update admin_sessions set last_seen_at = $2, expires_at = $3 where id_hash = $1 and expires_at > $2 and created_at > $4',
        [idHash, now, expiresAt, createdAfter],
      );
      return r.rowCount > 0;
    },
    async remove(idHash: string): Promise<void> {
      await db.query('delete from admin_sessions where id_hash = $1', [idHash]);
    },
    async purgeExpired(now: Date): Promise<number> {
      return (await db.query('delete from admin_sessions where expires_at <= $1', [now])).rowCount;
    },
  };
}
