/**
 * `mooring keys rotate`: re-seals every secret at rest under MOORING_ENCRYPTION_KEY, reading
 * values sealed under MOORING_ENCRYPTION_PREVIOUS_KEYS. Works on the database directly; with
 * PostgreSQL it is safe while the API and workers run, with the embedded database stop the
 * server first (only one process may open it).
 */
import type { Config } from '../config.ts';
import { resolveSecretBox } from '../crypto/key.ts';
import { countNotUnderCurrentKey, resealSecrets } from '../crypto/reseal.ts';
import { openDb, type Db, type Queryable } from '../db/db.ts';
import type { SecretBox } from '../crypto/secrets.ts';

const USAGE = `Usage: mooring keys rotate

Re-seals every stored secret (bank grants, client secrets, webhook secrets, sessions) under the key
in MOORING_ENCRYPTION_KEY. Keep the old key readable meanwhile in MOORING_ENCRYPTION_PREVIOUS_KEYS
(comma-separated). Safe to run again; each run continues where the last stopped.`;

async function serverAnswers(publicUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${publicUrl}/health`, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

export async function keysCommand(args: string[], config: Config): Promise<number> {
  if (args[0] !== 'rotate' || args.length > 1) {
    console.error(`mooring keys: unknown or missing subcommand\n\n${USAGE}`);
    return 2;
  }
  let box: SecretBox;
  try {
    box = resolveSecretBox(config).box;
  } catch (err) {
    console.error(`mooring keys rotate: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  if (config.databaseUrl === null && (await serverAnswers(config.publicUrl))) {
    console.error(`mooring keys rotate: a server is running at ${config.publicUrl} on the embedded database, which only one process may open. Stop it, run this again, then start it with the new key.`);
    return 1;
  }
  let db: Db;
  try {
    db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  } catch (err) {
    console.error(`mooring keys rotate: cannot open the database (${err instanceof Error ? err.message : String(err)}).`);
    console.error(config.databaseUrl === null ? 'With the embedded database, stop the server first.' : 'Check DATABASE_URL.');
    return 1;
  }
  try {
    return await rotateKeys(db, box, { log: (m) => console.log(m), error: (m) => console.error(m) });
  } catch (err) {
    console.error(`mooring keys rotate: failed: ${err instanceof Error ? err.message : String(err)}. Nothing is lost; run it again.`);
    return 1;
  } finally {
    await db.close();
  }
}

export interface CommandOutput {
  log(line: string): void;
  error(line: string): void;
}

/** What `keys rotate` does once the database is open; answers the exit code. */
export async function rotateKeys(db: Queryable, box: SecretBox, out: CommandOutput): Promise<number> {
  out.log(`mooring: re-sealing secrets under key ${box.currentKid}`);
  const report = await resealSecrets(db, box, { progress: (m) => out.log(`mooring: ${m}`) });
  const left = Object.entries(await countNotUnderCurrentKey(db, box)).filter(([, n]) => n > 0);
  out.log(`mooring: ${report.resealed} value(s) re-sealed under key ${box.currentKid}`);
  if (report.failures.length > 0) {
    out.error(`mooring keys rotate: ${report.failures.length} value(s) could not be opened with any configured key:`);
    for (const f of report.failures.slice(0, 20)) out.error(`  ${f}`);
    out.error('Add the key they were sealed under to MOORING_ENCRYPTION_PREVIOUS_KEYS and run again.');
    return 1;
  }
  if (left.length > 0) {
    out.error(`mooring keys rotate: still not under key ${box.currentKid}: ${left.map(([c, n]) => `${c} (${n})`).join(', ')}.`);
    out.error('A process still writes with the old key: restart every process with the new MOORING_ENCRYPTION_KEY, then run again.');
    return 1;
  }
  out.log(`mooring: done. Every secret is sealed under key ${box.currentKid}; the previous keys can be removed.`);
  return 0;
}
