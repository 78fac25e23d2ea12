/** SQL for webhook endpoints, the event log and delivery attempts. */
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../db/db.ts';
import type { EventType } from './policy.ts';
import type { SecretBox } from '../crypto/secrets.ts';

/** Where a client's webhook secret is sealed: the context binding it to its row. */
export const webhookSecretContext = (clientId: string): string => `webhook_endpoints.secret:${clientId}`;

export interface EventRow {
  id: string;
  client_id: string;
  user_id: string;
  event_type: EventType;
  payload: Record<string, unknown>;
  created_at: Date;
  attempts: number;
  delivered_at: Date | null;
  gave_up_at: Date | null;
  next_attempt_at: Date | null;
}

export interface DeliveryRow {
  at: Date;
  status: 'delivered' | 'failed';
  response_code: number | null;
  error: string | null;
}

export type LeasedEvent = EventRow & { url: string | null; secret: string | null };

export interface AttemptRecord {
  eventId: string;
  at: Date;
  ok: boolean;
  responseCode: number | null;
  error: string | null;
  durationMs: number;
  nextAttemptAt: Date | null;
  gaveUp: boolean;
}

export interface EndpointRow {
  client_id: string;
  url: string;
  secret: string;
}

export interface NewEvent {
  clientId: string;
  userId: string;
  type: EventType;
  payload: Record<string, unknown>;
  dedupeKey?: string;
  now: Date;
}

/** `secrets` is needed by the methods that read or write an endpoint's signing secret. */
export function webhooksRepository(db: Queryable, secrets?: SecretBox) {
  const need = (): SecretBox => {
    if (secrets === undefined) throw new Error('this webhooks repository was made without the secret box');
    return secrets;
  };
  const openSecret = (clientId: string, stored: string): string =>
    need().isSealed(stored) ? need().open(stored, webhookSecretContext(clientId)) : stored;
  return {
    async setEndpoint(clientId: string, url: string, secret: string, now: Date): Promise<void> {
      await db.query(
        `insert into webhook_endpoints (client_id, url, secret, created_at, updated_at) values ($1, $2, $3, $4, $4)
         on conflict (client_id) do update set url = excluded.url, secret = excluded.secret, updated_at = excluded.updated_at`,
        [clientId, url, need().seal(secret, webhookSecretContext(clientId)), now],
      );
    },
    async deleteEndpoint(clientId: string): Promise<boolean> {
      const r = await db.query('delete from webhook_endpoints where client_id = $1', [clientId]);
      if (r.rowCount > 0) await db.query('update webhook_events set next_attempt_at = null where client_id = $1 and delivered_at is null', [clientId]);
      return r.rowCount > 0;
    },
    async endpoint(clientId: string): Promise<EndpointRow | undefined> {
      const row = (await db.query<EndpointRow>('select client_id, url, secret from webhook_endpoints where client_id = $1', [clientId])).rows[0];
      return row === undefined ? undefined : { ...row, secret: openSecret(clientId, row.secret) };
    },

    /** Logs an event (once per dedupe key); it is queued for delivery when the client has an endpoint. */
    async insertEvent(e: NewEvent): Promise<string | null> {
      const r = await db.query<{ id: string }>(
        `insert into webhook_events (id, client_id, user_id, event_type, payload, dedupe_key, created_at, next_attempt_at)
         values ($1, $2, $3, $4, $5, $6, $7, case when exists (select 1 from webhook_endpoints where client_id = $2) then $7::timestamptz else null end)
         on conflict (dedupe_key) do nothing returning id::text as id`,
        [randomUUID(), e.clientId, e.userId, e.type, JSON.stringify(e.payload), e.dedupeKey ?? null, e.now],
      );
      return r.rows[0]?.id ?? null;
    },

    async list(clientId: string, limit: number, offset: number, eventType: string | null): Promise<{ rows: (EventRow & { deliveries: DeliveryRow[] })[]; total: number }> {
      const [page, count] = await Promise.all([
        db.query<EventRow & { deliveries: DeliveryRow[] }>(
          `select e.id::text as id, e.client_id, e.user_id, e.event_type, e.payload, e.created_at, e.attempts, e.delivered_at, e.gave_up_at, e.next_attempt_at,
                  coalesce((select json_agg(json_build_object('at', d.at, 'status', d.status, 'response_code', d.response_code, 'error', d.error) order by d.at)
                            from webhook_deliveries d where d.event_id = e.id), '[]') as deliveries
             from webhook_events e
            where e.client_id = $1 and ($4::text is null or e.event_type = $4)
            order by e.created_at desc, e.id desc limit $2 offset $3`,
          [clientId, limit, offset, eventType],
        ),
        db.query<{ n: string }>('select count(*) as n from webhook_events where client_id = $1 and ($2::text is null or event_type = $2)', [clientId, eventType]),
      ]);
      return { rows: page.rows, total: Number(count.rows[0]?.n ?? 0) };
    },

    /** Queues an event for one more delivery (same id); false if the client has no such event. */
    async replay(clientId: string, eventId: string, now: Date): Promise<boolean> {
      const r = await db.query(
        `update webhook_events set next_attempt_at = $3, gave_up_at = null
          where id = $2::uuid and client_id = $1 and exists (select 1 from webhook_endpoints where client_id = $1)`,
        [clientId, eventId, now],
      );
      return r.rowCount > 0;
    },
    async eventExists(clientId: string, eventId: string): Promise<boolean> {
      return (await db.query('select 1 from webhook_events where id = $2::uuid and client_id = $1', [clientId, eventId])).rowCount > 0;
    },

    /**
     * Events due for delivery, leased (their next attempt pushed out) so no other dispatcher takes
     * them: up to `limit` in all, and per client at most `perClient` minus what the caller already
     * holds for it (`held`), each client's oldest first and interleaved so that every client's first
     * event goes before any client's second. Walks the (client_id, next_attempt_at) index: the
     * clients with due events by a loose index scan, then each client's oldest due events.
     */
    async leaseDue(now: Date, leaseUntil: Date, limit: number, perClient: number, held: ReadonlyMap<string, number> = new Map()): Promise<LeasedEvent[]> {
      const r = await db.query<LeasedEvent>(
        `with recursive clients as (
           (select client_id from webhook_events where next_attempt_at <= $1 order by client_id limit 1)
           union all
           select (select e.client_id from webhook_events e where e.next_attempt_at <= $1 and e.client_id > c.client_id order by e.client_id limit 1)
             from clients c where c.client_id is not null
         ),
         held as (select * from unnest($5::text[], $6::int[]) as h(client_id, n)),
         picked as (
           select p.id, p.next_attempt_at, row_number() over (partition by c.client_id order by p.next_attempt_at) as turn
             from clients c
             left join held h on h.client_id = c.client_id
             cross join lateral (
               select e.id, e.next_attempt_at from webhook_events e
                where e.client_id = c.client_id and e.next_attempt_at <= $1
                order by e.next_attempt_at limit greatest(0, $4 - coalesce(h.n, 0))
                for update skip locked
             ) p
            where c.client_id is not null
         ),
         due as (select id from picked order by turn, next_attempt_at limit $3)
         -- By primary key (an array, not a join the planner may hash over the whole table).
         update webhook_events e set next_attempt_at = $2 where e.id = any (array(select id from due))
         returning e.id::text as id, e.client_id, e.user_id, e.event_type, e.payload, e.created_at, e.attempts, e.delivered_at, e.gave_up_at,
                   (select url from webhook_endpoints w where w.client_id = e.client_id) as url,
                   (select secret from webhook_endpoints w where w.client_id = e.client_id) as secret`,
        [now, leaseUntil, limit, perClient, [...held.keys()], [...held.values()]],
      );
      return r.rows.map((row) => (row.secret === null ? row : { ...row, secret: openSecret(row.client_id, row.secret) }));
    },

    /** Records delivery attempts (one statement for the lot) and sets each event's next attempt. */
    async recordAttempts(attempts: readonly AttemptRecord[]): Promise<void> {
      if (attempts.length === 0) return;
      const col = <T>(f: (a: AttemptRecord) => T): T[] => attempts.map(f);
      await db.query(
        `with a as (
           select * from unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::int[], $6::text[], $7::int[], $8::timestamptz[], $9::boolean[])
             as t(id, event_id, at, status, response_code, error, duration_ms, next_attempt_at, gave_up)
         ),
         logged as (
           insert into webhook_deliveries (id, event_id, at, status, response_code, error, duration_ms)
           -- (an event deleted meanwhile must not cost the whole batch its records)
           select a.id, a.event_id, a.at, a.status, a.response_code, a.error, a.duration_ms from a join webhook_events e on e.id = a.event_id
         )
         update webhook_events e set attempts = e.attempts + 1,
                delivered_at = case when a.status = 'delivered' then a.at else e.delivered_at end,
                next_attempt_at = a.next_attempt_at,
                gave_up_at = case when a.gave_up then a.at else null end
           from a where e.id = a.event_id`,
        [
          col(() => randomUUID()), col((a) => a.eventId), col((a) => a.at.toISOString()), col((a) => (a.ok ? 'delivered' : 'failed')),
          col((a) => a.responseCode), col((a) => a.error), col((a) => Math.round(a.durationMs)),
          col((a) => a.nextAttemptAt?.toISOString() ?? null), col((a) => a.gaveUp),
        ],
      );
    },
  };
}
export type WebhooksRepository = ReturnType<typeof webhooksRepository>;
