/**
 * Re-seals every sealed value under the current key: `keys rotate` after a key change, and
 * start-up for values stored before secrets were sealed. Safe while the API and workers run (each
 * row is replaced only if unchanged since it was read; new writes already use the current key)
 * and resumable (a run only visits values not yet under the current key).
 */
import type { Queryable } from '../db/db.ts';
import { sealedColumns, type ResealedValue } from './repository.ts';
import { SecretError, type SecretBox } from './secrets.ts';

export const RESEAL_BATCH = 500;

export interface ResealReport {
  resealed: number;
  /** Values a concurrent writer changed between read and write (they were written under the writer's key). */
  changedMeanwhile: number;
  /** Values no configured key opens: `<column> <row key>: <reason>`. */
  failures: string[];
}

export interface ResealOptions {
  /** Only values stored before sealing (start-up); otherwise every value not under the current key. */
  plaintextOnly?: boolean;
  batchSize?: number;
  progress?: (message: string) => void;
}

export async function resealSecrets(db: Queryable, box: SecretBox, opts: ResealOptions = {}): Promise<ResealReport> {
  const keepPattern = opts.plaintextOnly === true ? 'v1.%' : `v1.${box.currentKid}.%`;
  const batch = opts.batchSize ?? RESEAL_BATCH;
  const report: ResealReport = { resealed: 0, changedMeanwhile: 0, failures: [] };
  for (const column of sealedColumns(db)) {
    let afterKey = '';
    let done = 0;
    let pages = 0;
    for (;;) {
      const rows = await column.page(afterKey, keepPattern, batch);
      const items: ResealedValue[] = [];
      for (const row of rows) {
        afterKey = row.key;
        let plaintext: string;
        try {
          plaintext = box.isSealed(row.value) ? box.open(row.value, row.context) : row.value;
        } catch (err) {
          if (!(err instanceof SecretError)) throw err;
          report.failures.push(`${column.name} ${row.key}: ${err.message}`);
          continue;
        }
        items.push({ row, sealed: box.seal(plaintext, row.context) });
      }
      // One statement a page: a round trip per value made a start-up after an upgrade take minutes at 1,000,000 connections.
      const written = items.length === 0 ? new Set<string>() : await column.replace(items);
      done += written.size;
      report.changedMeanwhile += items.length - written.size;
      pages += 1;
      const last = rows.length < batch;
      // Every page of a small table, every 20th (10,000 values) of a large one, and the last.
      if (rows.length > 0 && (pages <= 20 || pages % 20 === 0 || last)) opts.progress?.(`${column.name}: ${done} re-sealed so far`);
      if (last) break;
    }
    report.resealed += done;
  }
  return report;
}

/** Values not sealed under the current key, per column (what a finished rotation leaves: none). */
export async function countNotUnderCurrentKey(db: Queryable, box: SecretBox): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const column of sealedColumns(db)) {
    let n = 0;
    let afterKey = '';
    for (;;) {
      const rows = await column.page(afterKey, `v1.${box.currentKid}.%`, RESEAL_BATCH);
      n += rows.length;
      const last = rows[rows.length - 1];
      if (last === undefined || rows.length < RESEAL_BATCH) break;
      afterKey = last.key;
    }
    out[column.name] = n;
  }
  return out;
}
