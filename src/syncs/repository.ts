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
     * the caller joins that one). `method` is ADD for a connection's first sync.
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

    /** insertQueued for many unattended syncs in one statement (the scheduler tick); answers those queued. */
    async insertQueuedMany(rows: { id: string; connectionId: string; userId: string; providerId: string }[], action: SyncAction, now: Date): Promise<SyncRow[]> {
      if (rows.length === 0) return [];
      const r = await db.query<SyncRow>(
        `insert into syncs (id, connection_id, user_id, provider_id, action, method, state, attended, created_at, lease_until)
         select x.id, x.connection_id, x.user_id, x.provider_id, $2,
                case when exists (select 1 from syncs s where s.connection_id = x.connection_id) then 'UPDATE' else 'ADD' end,
                'queued', false, $3, now() + make_interval(secs => $4)
           from jsonb_to_recordset($1::jsonb) as x(id uuid, connection_id text, user_id text, provider_id text)
         on conflict (connection_id) where state <> 'done' do nothing
         returning *`,
        [JSON.stringify(rows.map((x) => ({ id: x.id, connection_id: x.connectionId, user_id: x.userId, provider_id: x.providerId }))), action, now, leases.queuedLeaseSeconds],
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

    /** Renews the lease of this run (its attempt) only; false once another run took the sync over. */
    async renewLease(syncId: string, attempt: number): Promise<boolean> {
      const r = await db.query(`update syncs set lease_until = now() + make_interval(secs => $2) where id = $1 and state = 'running' and attempts = $3`, [syncId, leases.runningLeaseSeconds, attempt]);
      return r.rowCount > 0;
    },

    /**
     * Sends syncs whose lease ran out back to the queue: a running one whose process died, or a
     * queued one nobody picked up. Answers them so they can be handed to workers again.
     */
    async requeueExpired(limit: number): Promise<{ id: string; provider_id: string; was: string }[]> {
      const r = await db.query<{ id: string; provider_id: string; was: string }>(
        `with expired as (
           select id, state from syncs where state <> 'done' and lease_until < now() order by lease_until limit $1 for update skip locked
         )
         update syncs s set state = 'queued', lease_until = now() + make_interval(secs => $2)
         from expired e where s.id = e.id
         returning s.id::text as id, s.provider_id, e.state as was`,
        [limit, leases.queuedLeaseSeconds],
      );
      return r.rows;
    },

    /** Start times of a connection's unattended syncs since `since` (for the budget). */
    async unattendedTimes(connectionId: string, since: Date): Promise<Date[]> {
      const r = await db.query<{ created_at: Date }>('select created_at from syncs where connection_id = $1 and not attended and created_at > $2', [connectionId, since]);
      return r.rows.map((x) => x.created_at);
    },

    async finish(id: string, f: { fetchStatus: FetchStatus; fetchedAt: Date | null; finishedAt: Date; counts: SyncCounts; errorDetail: string | null; accounts: { providerId: string; accountId: string }[] }): Promise<void> {
      await db.query(
        `update syncs set state = 'done', fetch_status = $2, fetched_at = $3, finished_at = $4, counts = $5, error_detail = $6, accounts = $7,
           lease_until = null, customer_ip = null
         where id = $1`,
        [id, f.fetchStatus, f.fetchedAt, f.finishedAt, JSON.stringify(f.counts), f.errorDetail, JSON.stringify(f.accounts)],
      );
    },

    /**
     * Gives a running sync back to the queue after Mooring's own failure (this run only): it runs
     * again once `retryAfterSeconds` have passed (the reaper hands it out, or a waiting requester
     * runs it). Nothing about the attempt is recorded as an outcome.
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
