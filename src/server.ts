/**
 * Assembles a Mooring server from a Config: database (migrated), keys, clock, catalog, adapters and
 * the app. main.ts calls it to run; tests call it to get a real server on a real database.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type Provider from 'oidc-provider';
import { buildApp } from './app.ts';
import { systemClock, type MovableClock } from './clock.ts';
import type { Config } from './config.ts';
import { openDb, type Db } from './db/db.ts';
import { migrate } from './db/migrate.ts';
import { readSetting, settingOrCreate } from './db/settings.ts';
import { loadOrCreateKeys } from './oauth/keys.ts';
import { createCatalog, sandboxCatalog, type Catalog } from './providers/catalog.ts';
import { createProviderAdapters } from './providers/registry.ts';

export const CLOCK_OFFSET_SETTING = 'sandbox_clock_offset_ms';

export interface Server {
  app: FastifyInstance;
  oidc: Provider;
  db: Db;
  clock: MovableClock;
  catalog: Catalog;
  close(): Promise<void>;
}

export interface ServerOptions {
  config: Config;
  logger: FastifyBaseLogger;
  adminToken: string;
  /** An already-open database (tests); otherwise one is opened from the config. */
  db?: Db;
  onProgress?: (msg: string) => void;
}

export async function createServer(opts: ServerOptions): Promise<Server> {
  const { config } = opts;
  const progress = opts.onProgress ?? (() => undefined);
  const ownsDb = opts.db === undefined;
  progress(config.databaseUrl === null ? `opening the embedded database in ${config.dataDir}` : 'connecting to PostgreSQL');
  const db = opts.db ?? (await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize }));
  try {
    await migrate(db, progress);
    const keys = await loadOrCreateKeys(db);
    const clock = systemClock();
    clock.setOffsetMs((await readSetting<number>(db, CLOCK_OFFSET_SETTING)) ?? 0);
    const sandboxClientSecret = (await settingOrCreate(db, 'sandbox_client_secret', () => randomBytes(24).toString('base64url'))).value;
    const catalog = createCatalog(config.sandbox ? sandboxCatalog(config.publicUrl) : []);
    const adapters = createProviderAdapters({ sandboxClientSecret });
    const { app, oidc } = await buildApp({ config, db, clock, logger: opts.logger, catalog, adapters, keys, adminToken: opts.adminToken, sandboxClientSecret });
    return {
      app,
      oidc,
      db,
      clock,
      catalog,
      async close() {
        await app.close();
        if (ownsDb) await db.close();
      },
    };
  } catch (err) {
    if (ownsDb) await db.close().catch(() => undefined);
    throw err;
  }
}
