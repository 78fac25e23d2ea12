/** Small persistent settings (keys, secrets, the sandbox clock) in the `settings` table. */
import type { Queryable } from './db.ts';
import type { SecretBox } from '../crypto/secrets.ts';

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

/** Settings that are secrets (signing and cookie keys, Mooring's own credential at the sandbox banks): kept sealed. */
export const SEALED_SETTINGS = ['server_keys', 'sandbox_client_secret'] as const;
export type SealedSetting = (typeof SEALED_SETTINGS)[number];
export const settingContext = (key: string): string => `settings:${key}`;

/**
 * settingOrCreate for a secret: stored as a sealed JSON string. A value stored before sealing is
 * read as it is (start-up seals it).
 */
export async function sealedSettingOrCreate<T>(db: Queryable, key: SealedSetting, box: SecretBox, make: () => T | Promise<T>): Promise<{ value: T; created: boolean }> {
  const r = await settingOrCreate<unknown>(db, key, async () => box.seal(JSON.stringify(await make()), settingContext(key)));
  const v = r.value;
  return { value: typeof v === 'string' && box.isSealed(v) ? (JSON.parse(box.open(v, settingContext(key))) as T) : (v as T), created: r.created };
}
