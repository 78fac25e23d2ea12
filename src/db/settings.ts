/** Small persistent settings (keys, secrets, the sandbox clock) in the `settings` table. */
import type { Queryable } from './db.ts';

/** Reads a setting, creating it with `make()` on first use; the first writer wins across processes. */
export async function settingOrCreate<T>(db: Queryable, key: string, make: () => T | Promise<T>): Promise<{ value: T; created: boolean }> {
  const existing = await db.query<{ value: T }>('select value from settings where key = $1', [key]);
  if (existing.rows[0] !== undefined) return { value: existing.rows[0].value, created: false };
  const fresh = await make();
  const inserted = await db.query('insert into settings (key, value) values ($1, $2) on conflict (key) do nothing', [key, JSON.stringify(fresh)]);
  const stored = await db.query<{ value: T }>('select value from settings where key = $1', [key]);
  const row = stored.rows[0];
  if (row === undefined) throw new Error(`setting ${key} could not be stored`);
  return { value: row.value, created: inserted.rowCount > 0 };
}

export async function readSetting<T>(db: Queryable, key: string): Promise<T | undefined> {
  const r = await db.query<{ value: T }>('select value from settings where key = $1', [key]);
  return r.rows[0]?.value;
}

export async function writeSetting(db: Queryable, key: string, value: unknown): Promise<void> {
  await db.query(
    'insert into settings (key, value, updated_at) values ($1, $2, now()) on conflict (key) do update set value = excluded.value, updated_at = now()',
    [key, JSON.stringify(value)],
  );
}
