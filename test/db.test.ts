import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { migrate } from '../src/db/migrate.ts';

describe('database', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(async () => t.drop());

  it('applies every migration once and records it', async () => {
    const again = await migrate(t.db);
    expect(again.applied).toEqual([]);
    const rows = await t.db.query<{ name: string }>('select name from schema_migrations order by name');
    expect(rows.rows.map((r) => r.name)[0]).toBe('0001_init.sql');
  });

  it('rolls a failed transaction back', async () => {
    await expect(
      t.db.transaction(async (tx) => {
        await tx.query(`insert into settings (key, value) values ('k', '1')`);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const r = await t.db.query(`select 1 from settings where key = 'k'`);
    expect(r.rowCount).toBe(0);
  });

  it('runs multi-statement SQL text and answers one result per statement', async () => {
    const out = await t.db.executeSql('select 1 as a; select 2 as b');
    expect(Array.isArray(out)).toBe(true);
    const arr = out as { rows: Record<string, unknown>[] }[];
    expect(arr[1]?.rows[0]).toEqual({ b: 2 });
  });
});
