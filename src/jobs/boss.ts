/**
 * pg-boss, the durable job queue, on the same database as everything else: its own pool on
 * PostgreSQL, or Mooring's PGlite instance through an executeSql adapter in embedded mode.
 */
import { PgBoss } from 'pg-boss';
import type { Db } from '../db/db.ts';

export const SYNC_QUEUE = 'sync';
export const BOSS_SCHEMA = 'pgboss';

export interface BossOptions {
  db: Db;
  databaseUrl: string | null;
  poolSize: number;
  log: { error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export async function startBoss(opts: BossOptions): Promise<PgBoss> {
  const common = { schema: BOSS_SCHEMA, monitorIntervalSeconds: 10, superviseIntervalSeconds: 10, maintenanceIntervalSeconds: 60, queueCacheIntervalSeconds: 2 } as const;
  const boss =
    opts.databaseUrl !== null
      ? new PgBoss({ ...common, connectionString: opts.databaseUrl, max: Math.max(2, Math.ceil(opts.poolSize / 2)) })
      : new PgBoss({
          ...common,
          backend: 'pglite',
          db: {
            async executeSql(text: string, values?: unknown[]) {
              const result = await opts.db.executeSql(text, values);
              return Array.isArray(result) ? (result as unknown as { rows: unknown[] }) : result;
            },
          },
        });
  boss.on('error', (err: unknown) => opts.log.error({ err: err instanceof Error ? err.message : String(err) }, 'job queue error'));
  boss.on('warning', (w: unknown) => opts.log.warn({ warning: w }, 'job queue warning'));
  await boss.start();
  await boss.createQueue(SYNC_QUEUE, {
    // A sync's own lease recovers it from a dead worker; pg-boss retries the job as a second line.
    retryLimit: 5,
    retryDelay: 30,
    retryBackoff: true,
    expireInSeconds: 15 * 60,
    heartbeatSeconds: 30,
  });
  return boss;
}
