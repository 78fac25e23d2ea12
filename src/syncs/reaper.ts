/**
 * The reaper: gives back to the queue the running syncs whose lease ran out (their process died
 * or froze). They are due at once; the next claim bumps their attempt number, which fences the
 * old run out (it writes nothing if it ever wakes up). Queued syncs are never touched: they stay
 * in the queue until a claim takes them.
 */
import type { Db } from '../db/db.ts';
import { syncsRepository } from './repository.ts';

/** At most this many syncs are given back per pass. */
export const REAPER_BATCH = 1000;

export interface SyncReaperDeps {
  db: Db;
  log: { warn(obj: object, msg: string): void };
}

export function syncReaper(deps: SyncReaperDeps) {
  const syncs = syncsRepository(deps.db);
  return {
    /** Queues again the running syncs whose lease ran out; answers how many. */
    async reap(): Promise<number> {
      const expired = await syncs.requeueExpired(REAPER_BATCH);
      for (const s of expired) deps.log.warn({ syncId: s.id }, 'a sync was interrupted (its process stopped); queued again');
      return expired.length;
    },
  };
}
