import type { Queryable } from '../db/db.ts';
import type { JsonObject } from '../providers/provider.ts';
import type { JourneyKind } from './request.ts';

/**
 * `busy`: a step is being handled (the user's answer was taken; a second submission is refused).
 * `granted`: the provider granted access and the connection is stored; what is left (the first
 * sync, the client's grant) can be finished by the same callback again.
 */
/** How a journey's provider answered: it granted access, or it (or the way to it) failed. */
export type AuthOutcome = 'granted' | 'failed';

export const JOURNEY_STEPS = ['consent', 'provider', 'busy', 'granted', 'done', 'failed'] as const;
export type JourneyStepName = (typeof JOURNEY_STEPS)[number];

export interface JourneyRow {
  uid: string;
  client_id: string;
  user_id: string | null;
  kind: JourneyKind;
  scope: string;
  provider_id: string | null;
  connection_id: string | null;
  consent_expires_at: Date | null;
  enable_async: boolean;
  step: JourneyStepName;
  provider_state: string | null;
  pending: JsonObject;
}

export function journeysRepository(db: Queryable) {
  return {
    async upsert(j: Omit<JourneyRow, 'pending' | 'provider_state'> & { now: Date }): Promise<void> {
      await db.query(
        `insert into journeys (uid, client_id, user_id, kind, scope, provider_id, connection_id, consent_expires_at, enable_async, step, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         on conflict (uid) do nothing`,
        [j.uid, j.client_id, j.user_id, j.kind, j.scope, j.provider_id, j.connection_id, j.consent_expires_at, j.enable_async, j.step, j.now],
      );
    },
    async find(uid: string): Promise<JourneyRow | undefined> {
      const r = await db.query<JourneyRow>('select * from journeys where uid = $1', [uid]);
      return r.rows[0];
    },
    /** The journey that gave a provider this `state` (the fixed callback finds its journey so). */
    async uidOfProviderState(state: string): Promise<string | undefined> {
      const r = await db.query<{ uid: string }>('select uid from journeys where provider_state = $1', [state]);
      return r.rows[0]?.uid;
    },
    /** `authOutcome`: how the provider answered, once it has (what its status.auth counts; migration 0021). */
    async update(uid: string, u: { step: JourneyStepName; pending?: JsonObject; providerState?: string | null; userId?: string; connectionId?: string; authOutcome?: AuthOutcome; now: Date }): Promise<void> {
      await db.query(
        `update journeys set step = $2, pending = coalesce($3, pending), provider_state = case when $4 then $5 else provider_state end,
           user_id = coalesce($6, user_id), connection_id = coalesce($7, connection_id), auth_outcome = coalesce($9, auth_outcome), updated_at = $8
         where uid = $1`,
        [uid, u.step, u.pending === undefined ? null : JSON.stringify(u.pending), u.providerState !== undefined, u.providerState ?? null, u.userId ?? null, u.connectionId ?? null, u.now, u.authOutcome ?? null],
      );
    },
    /** Takes the journey from one step to `busy`, atomically; false when it was not at that step (a double submit). */
    async claim(uid: string, from: JourneyStepName, now: Date): Promise<boolean> {
      const r = await db.query(`update journeys set step = 'busy', updated_at = $3 where uid = $1 and step = $2`, [uid, from, now]);
      return r.rowCount > 0;
    },
    /** Journeys are short-lived; drop those untouched for a day. */
    /** Remembers which connection (and first sync) the OpenID grant a journey finished with is for. */
    async recordGrantConnection(grantId: string, connectionId: string, syncId: string | null): Promise<void> {
      await db.query('insert into grant_connections (grant_id, connection_id, sync_id) values ($1, $2, $3)', [grantId, connectionId, syncId]);
    },

    /** The connection (and first sync) a journey's grant is for, if a journey finished with it. */
    async connectionOfGrant(grantId: string): Promise<{ connectionId: string; syncId: string | null } | undefined> {
      const r = await db.query<{ connection_id: string; sync_id: string | null }>('select connection_id, sync_id from grant_connections where grant_id = $1', [grantId]);
      const row = r.rows[0];
      return row === undefined ? undefined : { connectionId: row.connection_id, syncId: row.sync_id };
    },

    /**
     * Deletes journeys untouched since `cutoff`; those of a connection that still exists go to
     * journey_history (kind, last step, times: the console's timeline), in the same statement.
     */
    async purgeOlderThan(cutoff: Date): Promise<number> {
      const r = await db.query<{ n: number }>(
        `with gone as (delete from journeys where updated_at < $1 returning uid, connection_id, client_id, kind, step, provider_id, created_at, updated_at),
         kept as (
           insert into journey_history (uid, connection_id, client_id, kind, step, provider_id, created_at, updated_at)
           select g.uid, g.connection_id, g.client_id, g.kind, g.step, g.provider_id, g.created_at, g.updated_at from gone g
            where g.connection_id is not null and exists (select 1 from connections c where c.id = g.connection_id)
           on conflict (uid) do nothing
         )
         select count(*)::int as n from gone`,
        [cutoff],
      );
      return r.rows[0]?.n ?? 0;
    },
  };
}
export type JourneysRepository = ReturnType<typeof journeysRepository>;
