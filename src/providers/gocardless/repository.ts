/**
 * SQL for the GoCardless token pair each provider entry shares across every Mooring process
 * (migrations/0015_gocardless.sql). The pair is stored sealed; issuing a new one is guarded by a
 * lease taken with compare-and-set, so two processes never both call `/token/new/` at once.
 */
import type { Queryable } from '../../db/db.ts';

export interface StoredTokenRow {
  sealed: string | null;
  access_expires_at: Date | null;
  refresh_expires_at: Date | null;
  issuing_until: Date | null;
}

export function goCardlessTokensRepository(db: Queryable) {
  return {
    async find(providerId: string): Promise<StoredTokenRow | undefined> {
      const r = await db.query<StoredTokenRow>(
        'select sealed, access_expires_at, refresh_expires_at, issuing_until from gocardless_tokens where provider_id = $1',
        [providerId],
      );
      return r.rows[0];
    },

    /** Takes the lease to renew the pair until `until`, if nobody holds it (or theirs has run out); true when taken. */
    async claimLease(providerId: string, now: Date, until: Date): Promise<boolean> {
      await db.query(
        'insert into gocardless_tokens (provider_id, updated_at) values ($1, $2) on conflict (provider_id) do nothing',
        [providerId, now],
      );
      const r = await db.query(
        `update gocardless_tokens set issuing_until = $3
          where provider_id = $1 and (issuing_until is null or issuing_until <= $2)`,
        [providerId, now, until],
      );
      return r.rowCount > 0;
    },

    /** Stores a new pair (or a refreshed access token) and gives the lease back. */
    async store(providerId: string, t: { sealed: string; accessExpiresAt: Date; refreshExpiresAt: Date; now: Date }): Promise<void> {
      await db.query(
        `update gocardless_tokens set sealed = $2, access_expires_at = $3, refresh_expires_at = $4, issuing_until = null, updated_at = $5
          where provider_id = $1`,
        [providerId, t.sealed, t.accessExpiresAt, t.refreshExpiresAt, t.now],
      );
    },

    async releaseLease(providerId: string): Promise<void> {
      await db.query('update gocardless_tokens set issuing_until = null where provider_id = $1', [providerId]);
    },

    /** Forgets the pair (GoCardless refused it): the next call issues a new one. Only if it is still `sealed`. */
    async forget(providerId: string, sealed: string): Promise<void> {
      await db.query(
        'update gocardless_tokens set sealed = null, access_expires_at = null, refresh_expires_at = null where provider_id = $1 and sealed = $2',
        [providerId, sealed],
      );
    },
  };
}
