/**
 * The claim: how a sync leaves the queue (the syncs table) to run, exactly once per attempt.
 *
 * A claim moves a sync queued → running, bumps its attempt number and gives it a lease, in one
 * statement that only a queued row satisfies: two claimers never both win. The run renews its
 * lease (this attempt only) while it works, and writes its result only while the row still holds
 * its attempt number (runner.ts assertStillOwned), so a run that froze past its lease and was
 * taken over writes nothing.
 */
import type { Db } from '../db/db.ts';
import type { Timers } from '../timers.ts';
import { syncsRepository, type SyncRow } from './repository.ts';
import type { RunClaimed } from './runner.ts';

export interface SyncClaimDeps {
  db: Db;
  runClaimed: RunClaimed;
  timers: Pick<Timers, 'runningLeaseSeconds' | 'queuedLeaseSeconds'>;
  log: { warn(obj: object, msg: string): void };
}

export function syncClaims(deps: SyncClaimDeps) {
  const syncs = syncsRepository(deps.db, deps.timers);
  const leaseRenewMs = (deps.timers.runningLeaseSeconds * 1000) / 3;

  /** Runs a claimed sync, renewing its lease (this attempt's) until the run ends. */
  async function runLeased(claimed: SyncRow): Promise<void> {
    const heartbeat = setInterval(() => {
      syncs.renewLease(claimed.id, claimed.attempts).catch((err: unknown) => deps.log.warn({ syncId: claimed.id, err: String(err) }, 'could not renew a sync lease'));
    }, leaseRenewMs);
    heartbeat.unref();
    try {
      await deps.runClaimed(claimed);
    } finally {
      clearInterval(heartbeat);
    }
  }

  return {
    /**
     * Claims the sync `syncId` and runs it, if it is still queued (with `onlyIfDue`, and its queued
     * lease ran out); false when someone else has it or it is done.
     */
    async claimAndRun(syncId: string, opts: { onlyIfDue?: boolean } = {}): Promise<boolean> {
      const claimed = await syncs.claim(syncId, opts);
      if (claimed === null) return false;
      await runLeased(claimed);
      return true;
    },

    /** A worker's take from the queue: up to `limit` due syncs, at most `perProvider` running per provider. */
    claimDue(limit: number, perProvider: number): Promise<SyncRow[]> {
      return syncs.claimDue(limit, perProvider);
    },

    runLeased,
  };
}
export type SyncClaims = ReturnType<typeof syncClaims>;
