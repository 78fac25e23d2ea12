/**
 * Provider overrides (retirement, declared outages) and the counts provider health is computed
 * from (SPEC section 5). The one place that reads or writes provider_overrides and counts a
 * provider's syncs and journeys.
 */
import type { Queryable } from '../db/db.ts';

export interface ProviderOverride {
  retiredAt: Date | null;
  outageUntil: Date | null;
}

/** A provider's finished syncs since a time, with its overrides. */
export interface ProviderHealthCounts extends ProviderOverride {
  providerId: string;
  /**
   * Finished syncs; a sync that failed inside Mooring (internal_failure) is Mooring's and not
   * counted, nor is a rate-limited one (see providers/health.ts).
   */
  attempts: number;
  /** Syncs whose fetch status was `success`. */
  successes: number;
  /** Syncs that failed at the provider (fetch status `error`), not because of the user (credentials, a one-time code). */
  providerErrors: number;
}

export function providersRepository(db: Queryable) {
  return {
    async override(providerId: string): Promise<ProviderOverride> {
      const r = await db.query<{ retired_at: Date | null; outage_until: Date | null }>(
        'select retired_at, outage_until from provider_overrides where provider_id = $1',
        [providerId],
      );
      const row = r.rows[0];
      return { retiredAt: row?.retired_at ?? null, outageUntil: row?.outage_until ?? null };
    },

    async isRetired(providerId: string): Promise<boolean> {
      return (await this.override(providerId)).retiredAt !== null;
    },

    /** Retires a provider for good; retiring it again keeps the first time. */
    async retire(providerId: string, now: Date): Promise<void> {
      await db.query(
        `insert into provider_overrides (provider_id, retired_at) values ($1, $2)
         on conflict (provider_id) do update set retired_at = coalesce(provider_overrides.retired_at, excluded.retired_at)`,
        [providerId, now],
      );
    },

    async declareOutage(providerId: string, until: Date): Promise<void> {
      await db.query(
        `insert into provider_overrides (provider_id, outage_until) values ($1, $2)
         on conflict (provider_id) do update set outage_until = excluded.outage_until`,
        [providerId, until],
      );
    },

    /** Health counts of each provider in `providerIds` over the syncs finished after `since` (zeros when none). */
    async healthCounts(providerIds: string[], since: Date): Promise<ProviderHealthCounts[]> {
      const r = await db.query<{ provider_id: string; retired_at: Date | null; outage_until: Date | null; attempts: string; successes: string; provider_errors: string }>(
        `select p.provider_id, po.retired_at, po.outage_until,
                count(s.id) as attempts,
                count(s.id) filter (where s.fetch_status = 'success') as successes,
                count(s.id) filter (where s.fetch_status = 'error') as provider_errors
           from (select unnest($1::text[]) as provider_id) p
           left join provider_overrides po on po.provider_id = p.provider_id
           left join syncs s on s.provider_id = p.provider_id and s.state = 'done' and not s.internal_failure and s.finished_at > $2
                            and s.fetch_status is distinct from 'rate-limited'
          group by p.provider_id, po.retired_at, po.outage_until`,
        [providerIds, since],
      );
      return r.rows.map((x) => ({
        providerId: x.provider_id, retiredAt: x.retired_at, outageUntil: x.outage_until,
        attempts: Number(x.attempts), successes: Number(x.successes), providerErrors: Number(x.provider_errors),
      }));
    },

    /**
     * Each provider's journeys that reached it and finished after `since` (status.auth): how many,
     * and how many it granted. Read from the journeys' partial index on auth_outcome (migration
     * 0021) by one range over the window; providers without any are absent.
     */
    async authCounts(since: Date): Promise<{ providerId: string; attempts: number; successes: number }[]> {
      const r = await db.query<{ provider_id: string; attempts: string; successes: string }>(
        `select provider_id, count(*) as attempts, count(*) filter (where auth_outcome = 'granted') as successes
           from journeys
          where auth_outcome is not null and updated_at > $1 and provider_id is not null
          group by provider_id`,
        [since],
      );
      return r.rows.map((x) => ({ providerId: x.provider_id, attempts: Number(x.attempts), successes: Number(x.successes) }));
    },
  };
}
export type ProvidersRepository = ReturnType<typeof providersRepository>;
