/**
 * Applies the numbered SQL files in migrations/ that have not run yet, each in its own transaction.
 * An advisory lock keeps two processes starting at once from running the same migration.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from './db.ts';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');
const MIGRATION_LOCK_KEY = 7_263_001;

export interface MigrationReport {
  applied: string[];
  alreadyApplied: number;
}

export async function migrate(db: Db, onProgress: (msg: string) => void = () => undefined): Promise<MigrationReport> {
  const files = fs
    .readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort();
  const applied: string[] = [];
  let alreadyApplied = 0;
  for (const file of files) {
    const sql = fs.readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8');
    const ran = await db.transaction(async (tx) => {
      // A transaction-scoped lock: released with the transaction, whichever pooled connection ran it.
      if (db.kind === 'postgres') await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      await tx.query('create table if not exists schema_migrations (name text primary key, applied_at timestamptz not null default now())');
      const seen = await tx.query('select 1 from schema_migrations where name = $1', [file]);
      if (seen.rowCount > 0) return false;
      onProgress(`applying migration ${file}`);
      for (const statement of splitStatements(sql)) await tx.query(statement);
      await tx.query('insert into schema_migrations (name) values ($1)', [file]);
      return true;
    });
    if (ran) applied.push(file);
    else alreadyApplied += 1;
  }
  return { applied, alreadyApplied };
}

/** Splits a migration on semicolons at line ends; migrations keep to that simple form (no function bodies). */
function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}
