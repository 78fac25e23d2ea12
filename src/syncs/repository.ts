/** SQL for sync records (what a sync brought in is stored by accounts/repository.ts). */
import type { Queryable } from '../db/db.ts';
import type { FetchStatus } from '../connections/status.ts';
import type { SyncAction, SyncMethod, SyncState } from './schemas.ts';
import { DEFAULT_TIMERS } from '../timers.ts';

export interface SyncRow {
  id: string;
  connection_id: string;
  user_id: string;
  provider_id: string;
  action: SyncAction;
  method: SyncMethod;
  state: SyncState;
  attended: boolean;
  fetch_status: FetchStatus | null;
  created_at: Date;
  fetched_at: Date | null;
  finished_at: Date | null;
  counts: { accounts: number; transactionsAdded: number; transactionsUpdated: number };
  error_detail: string | null;
  accounts: { providerId: string; accountId: string }[];
  customer_ip: string | null;
  attempts: number;
  lease_until: Date | null;
  internal_failure: boolean;
}

/** Leases default to DEFAULT_TIMERS (timers.ts); createServer may pass others. */
export const QUEUED_LEASE_SECONDS = DEFAULT_TIMERS.queuedLeaseSeconds;
export const RUNNING_LEASE_SECONDS = DEFAULT_TIMERS.runningLeaseSeconds;

export interface SyncCounts {
  accounts: number;
  transactionsAdded: number;
  transactionsUpdated: number;
}

export interface SyncLeases {
  queuedLeaseSeconds: number;
  runningLeaseSeconds: number;
}

export function syncsRepository(db: Queryable, leases: SyncLeases = { queuedLeaseSeconds: QUEUED_LEASE_SECONDS, runningLeaseSeconds: RUNNING_LEASE_SECONDS }) {
  return {
    /**
     * Queues a sync unless the connection already has one queued or running (then answers null:
     * the caller joins that one). `method` is ADD for a connection's first sync. Its requester runs
     * it; workers take it only once queuedLeaseSeconds have passed (the requester died meanwhile).
     */
    async insertQueued(s: { id: string; connectionId: string; userId: string; providerId: string; action: SyncAction; attended: boolean; customerIp: string | null; now: Date }): Promise<SyncRow | null> {
      const r = await db.query<SyncRow>(
        `insert into syncs (id, connection_id, user_id, provider_id, action, method, state, attended, customer_ip, created_at, lease_until)
         values ($1, $2, $3, $4, $5,
                 case when exists (select 1 from syncs where connection_id = $2) then 'UPDATE' else 'ADD' end,
                 'queued', $6, $7, $8, now() + make_interval(secs => $9))
         on conflict (connection_id) where state <> 'done' do nothing
         returning *`,
        [s.id, s.connectionId, s.userId, s.providerId, s.action, s.attended, s.customerIp, s.now, leases.queuedLeaseSeconds],
      );
      return r.rows[0] ?? null;
    },

    /** insertQueued for many unattended syncs in one statement (the scheduler tick), due at once; answers those queued. */
    async insertQueuedMany(rows: { id: string; connectionId: string; userId: string; providerId: string }[], action: SyncAction, now: Date): Promise<SyncRow[]> {
      if (rows.length === 0) return [];
      const r = await db.query<SyncRow>(
        `insert into syncs (id, connection_id, user_id, provider_id, action, method, state, attended, created_at, lease_until)
         select x.id, x.connection_id, x.user_id, x.provider_id, $2,
                case when exists (select 1 from syncs s where s.connection_id = x.connection_id) then 'UPDATE' else 'ADD' end,
                'queued', false, $3, now()
           from jsonb_to_recordset($1::jsonb) as x(id uuid, connection_id text, user_id text, provider_id text)
         on conflict (connection_id) where state <> 'done' do nothing
         returning *`,
        [JSON.stringify(rows.map((x) => ({ id: x.id, connection_id: x.connectionId, user_id: x.userId, provider_id: x.providerId }))), action, now],
      );
      return r.rows;
    },

    async findActiveForConnection(connectionId: string): Promise<SyncRow | undefined> {
      const r = await db.query<SyncRow>(`select * from syncs where connection_id = $1 and state <> 'done'`, [connectionId]);
      return r.rows[0];
    },

    /** Every sync queued or running now. */
    async activeSyncs(): Promise<SyncRow[]> {
      return (await db.query<SyncRow>(`select * from syncs where state <> 'done' order by created_at`)).rows;
    },

    async findById(syncId: string): Promise<SyncRow | undefined> {
      const r = await db.query<SyncRow>('select * from syncs where id = $1', [syncId]);
      return r.rows[0];
    },

    /**
     * Takes a queued sync to run it, under a lease that its runner keeps renewing. Null: not ours to run.
     * With `onlyIfDue`, only once its queued lease has run out (by the database's clock, which set it).
     */
    async claim(syncId: string, opts: { onlyIfDue?: boolean } = {}): Promise<SyncRow | null> {
      const r = await db.query<SyncRow>(
        `update syncs set state = 'running', attempts = attempts + 1, lease_until = now() + make_interval(secs => $2)
         where id = $1 and state = 'queued' and (not $3 or lease_until <= now()) returning *`,
        [syncId, leases.runningLeaseSeconds, opts.onlyIfDue === true],
      );
      return r.rows[0] ?? null;
    },

    /**
     * The queue's take: claims up to `limit` queued syncs that are due (lease_until, their
     * not-before time, has passed), oldest first, as claim does one. Rows another worker is
     * claiming at the same moment are skipped, never waited for or taken twice. A provider with
     * `perProvider` syncs running already gets no more (a soft cap: two workers claiming at the
     * same instant may each fill it).
     */
    async claimDue(limit: number, perProvider: number): Promise<SyncRow[]> {
      const r = await db.query<SyncRow>(
        `with busy as (
           select provider_id, count(*)::int as running from syncs where state = 'running' group by provider_id
         ), ready as (
           select s.id, s.provider_id, s.lease_until from syncs s
            where s.state = 'queued' and s.lease_until <= now()
              and s.provider_id not in (select provider_id from busy where running >= $2)
            order by s.lease_until
            limit $1
            for update skip locked
         ), chosen as (
           select r.id from (
             select ready.id, coalesce(busy.running, 0) + row_number() over (partition by ready.provider_id order by ready.lease_until, ready.id) as slot
               from ready left join busy using (provider_id)
           ) r where r.slot <= $2
         )
         update syncs s set state = 'running', attempts = s.attempts + 1, lease_until = now() + make_interval(secs => $3)
           from chosen c where s.id = c.id and s.state = 'queued'
         returning s.*`,
        [limit, perProvider, leases.runningLeaseSeconds],
      );
      return r.rows;
    },

    /** Renews the lease of this run (its attempt) only; false once another run took the sync over. */
    async renewLease(syncId: string, attempt: number): Promise<boolean> {
      const r = await db.query(`update syncs set lease_until = now() + make_interval(secs => $2) where id = $1 and state = 'running' and attempts = $3`, [syncId, leases.runningLeaseSeconds, attempt]);
      return r.rowCount > 0;
    },

    /**
     * Sends running syncs whose lease ran out (their process died or froze) back to the queue, due
     * at once. The next claim bumps the attempt number, which fences the old run out.
     */
    async requeueExpired(limit: number): Promise<{ id: string; provider_id: string }[]> {
      const r = await db.query<{ id: string; provider_id: string }>(
        `with expired as (
           select id from syncs where state = 'running' and lease_until < now() order by lease_until limit $1 for update skip locked
         )
         update syncs s set state = 'queued', lease_until = now()
         from expired e where s.id = e.id and s.state = 'running'
         returning s.id::text as id, s.provider_id`,
        [limit],
      );
      return r.rows;
    },

    /**
     * Finished syncs per provider since `since` that were neither Mooring's own failure nor
     * rate-limited (see providers/health.ts), and how many of them fetched something (not `error`).
     */
    async providerOutcomesSince(providerIds: string[], since: Date): Promise<{ provider_id: string; attempts: number; successes: number }[]> {
      const r = await db.query<{ provider_id: string; attempts: number; successes: number }>(
        `select provider_id, count(*)::int as attempts, count(*) filter (where fetch_status <> 'error')::int as successes
           from syncs where provider_id = any($1::text[]) and state = 'done' and not internal_failure and finished_at > $2
            and fetch_status is distinct from 'rate-limited'
          group by provider_id`,
        [providerIds, since],
      );
      return r.rows;
    },

    /** Start times of a connection's unattended syncs since `since` (for the budget). */
    async unattendedTimes(connectionId: string, since: Date): Promise<Date[]> {
      const r = await db.query<{ created_at: Date }>('select created_at from syncs where connection_id = $1 and not attended and created_at > $2', [connectionId, since]);
      return r.rows.map((x) => x.created_at);
    },

    /** Ends a sync and answers its finished row. */
    async finish(id: string, f: { fetchStatus: FetchStatus; fetchedAt: Date | null; finishedAt: Date; counts: SyncCounts; errorDetail: string | null; accounts: { providerId: string; accountId: string }[] }): Promise<SyncRow> {
      const r = await db.query<SyncRow>(
        `update syncs set state = 'done', fetch_status = $2, fetched_at = $3, finished_at = $4, counts = $5, error_detail = $6, accounts = $7,
           lease_until = null, customer_ip = null
         where id = $1 returning *`,
        [id, f.fetchStatus, f.fetchedAt, f.finishedAt, JSON.stringify(f.counts), f.errorDetail, JSON.stringify(f.accounts)],
      );
      const row = r.rows[0];
      if (row === undefined) throw new Error(`sync ${id} vanished while it was being finished`);
      return row;
    },

    /**
     * Gives a running sync back to the queue after Mooring's own failure (this run only): it runs
     * again once `retryAfterSeconds` have passed (a worker claims it, or a waiting requester runs
     * it). Nothing about the attempt is recorded as an outcome.
     */
    async releaseForRetry(id: string, attempt: number, retryAfterSeconds: number, detail: string): Promise<boolean> {
      const r = await db.query(
        `update syncs set state = 'queued', lease_until = now() + make_interval(secs => $3), error_detail = $4
         where id = $1 and state = 'running' and attempts = $2`,
        [id, attempt, retryAfterSeconds, detail],
      );
      return r.rowCount > 0;
    },

    /** Ends a sync (this run only) as Mooring's own failure: done / error, flagged internal. */
    async finishInternalFailure(id: string, attempt: number, finishedAt: Date, detail: string): Promise<boolean> {
      const r = await db.query(
        `update syncs set state = 'done', fetch_status = 'error', internal_failure = true, fetched_at = null, finished_at = $3,
           error_detail = $4, lease_until = null, customer_ip = null
         where id = $1 and state = 'running' and attempts = $2`,
        [id, attempt, finishedAt, detail],
      );
      return r.rowCount > 0;
    },

    async listForConnection(connectionId: string, limit: number, offset: number): Promise<{ rows: SyncRow[]; total: number }> {
      const [page, count] = await Promise.all([
        db.query<SyncRow>('select * from syncs where connection_id = $1 order by created_at desc, id desc limit $2 offset $3', [connectionId, limit, offset]),
        db.query<{ n: string }>('select count(*) as n from syncs where connection_id = $1', [connectionId]),
      ]);
      return { rows: page.rows, total: Number(count.rows[0]?.n ?? 0) };
    },

    async findForUser(userId: string, syncId: string): Promise<SyncRow | undefined> {
      const r = await db.query<SyncRow>('select * from syncs where id = $2::uuid and user_id = $1', [userId, syncId]);
      return r.rows[0];
    },

    /** Locks the sync if it is still running as attempt `attempt` (the holder's fence); false when someone else has it now. */
    async lockIfStillRunning(syncId: string, attempt: number): Promise<boolean> {
      const r = await db.query(`select 1 from syncs where id = $1 and state = 'running' and attempts = $2 for update`, [syncId, attempt]);
      return r.rowCount > 0;
    },
  };
}
export type SyncsRepository = ReturnType<typeof syncsRepository>;
