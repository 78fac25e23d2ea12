/**
 * A fresh, migrated database for each test file: PostgreSQL when TEST_DATABASE_URL is set (a new
 * database cloned from a migrated template), otherwise an in-memory PGlite.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { openDb, type Db } from '../../src/db/db.ts';
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.ts';

// The template's name carries a hash of the migrations, so editing one never reuses a stale template.
const TEMPLATE = `mooring_test_tpl_${createHash('sha256')
  .update(fs.readdirSync(MIGRATIONS_DIR).sort().map((f) => `${f}\n${fs.readFileSync(path.join(MIGRATIONS_DIR, f), 'utf8')}`).join('\n'))
  .digest('hex')
  .slice(0, 16)}`;

export const testDatabaseUrl = (): string | null => {
  const url = process.env.TEST_DATABASE_URL;
  return url !== undefined && url !== '' ? url : null;
};

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function ensureTemplate(url: string): Promise<void> {
  // Serialise template creation across test files running in parallel.
  await admin(url, async (c) => {
    await c.query('select pg_advisory_lock(7263002)');
    try {
      const exists = await c.query('select 1 from pg_database where datname = $1', [TEMPLATE]);
      if (exists.rowCount === 0) {
        await c.query(`create database ${TEMPLATE}`);
      }
      // Always bring the template up to date (new migrations since it was made).
      const tdb = await openDb({ databaseUrl: withDatabase(url, TEMPLATE), dataDir: null, poolSize: 1 });
      try {
        await migrate(tdb);
      } finally {
        await tdb.close();
      }
    } finally {
      await c.query('select pg_advisory_unlock(7263002)');
    }
  });
}

export interface TestDb {
  db: Db;
  /** The PostgreSQL URL of this test's database, or null on PGlite. */
  url: string | null;
  drop(): Promise<void>;
}

export async function createTestDb(): Promise<TestDb> {
  const url = testDatabaseUrl();
  if (url === null) {
    const db = await openDb({ databaseUrl: null, dataDir: null });
    await migrate(db);
    return { db, url: null, drop: () => db.close() };
  }
  await ensureTemplate(url);
  const name = `mooring_test_${randomBytes(6).toString('hex')}`;
  await admin(url, async (c) => {
    await c.query('select pg_advisory_lock(7263002)');
    try {
      await c.query(`create database ${name} template ${TEMPLATE}`);
    } finally {
      await c.query('select pg_advisory_unlock(7263002)');
    }
  });
  const dbUrl = withDatabase(url, name);
  const db = await openDb({ databaseUrl: dbUrl, dataDir: null, poolSize: 10 });
  return {
    db,
    url: dbUrl,
    async drop() {
      await db.close();
      await admin(url, (c) => c.query(`drop database if exists ${name} with (force)`));
    },
  };
}
