/**
 * A Mooring deployment as real processes for crash tests: one API process and sync workers
 * (`node src/main.ts api|worker`) on a fresh PostgreSQL database, with connections made through
 * the browser journey, plus test-only instrumentation of that throwaway database (an audit of every
 * sync state change and every write of a sync's result, with the writing process's PGAPPNAME).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { Db } from '../../src/db/db.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { connect, officialClient, sandbox, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { killAllMooring, spawnMooring, waitUntil, type MooringProcess } from '../helpers/processes.ts';
import { ADMIN_TOKEN, freePort, TEST_ENCRYPTION_KEY } from '../helpers/server.ts';
import { DOMAIN_START } from '../helpers/time.ts';

export const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';
/** Every wait is bounded by this; the lease (30 s) plus the reaper interval (10 s) fit well inside. */
export const WAIT_MS = 90_000;

export interface Conn {
  userId: string;
  connectionId: string;
  slow: boolean;
}

export interface SyncDbRow {
  id: string;
  connection_id: string;
  action: string;
  method: string;
  attended: boolean;
  state: string;
  fetch_status: string | null;
  attempts: number;
  error_detail: string | null;
  finished_at: Date | null;
  counts: { accounts: number; transactionsAdded: number; transactionsUpdated: number };
}

/** A sync's state change (from_state null: inserted). */
export interface Transition {
  sync_id: string;
  connection_id: string;
  from_state: string | null;
  to_state: string;
  attempt: number;
  app: string;
  at: Date;
}

/** A write of a sync's result (fetch status, finish time, counts), by whichever process made it. */
export interface ResultWrite {
  sync_id: string;
  app: string;
  fetch_status: string | null;
  attempt: number;
  at: Date;
}

async function installAudit(db: Db): Promise<void> {
  await db.query(`
    create schema crash_audit;
    create table crash_audit.transitions (
      seq bigserial primary key, sync_id text not null, connection_id text not null, from_state text, to_state text not null,
      attempt int not null, app text not null, at timestamptz not null default clock_timestamp());
    create table crash_audit.result_writes (
      seq bigserial primary key, sync_id text not null, app text not null, fetch_status text, attempt int not null,
      at timestamptz not null default clock_timestamp());
    create function crash_audit.record() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' or old.state is distinct from new.state then
        insert into crash_audit.transitions (sync_id, connection_id, from_state, to_state, attempt, app)
        values (new.id::text, new.connection_id, case when tg_op = 'UPDATE' then old.state end, new.state, new.attempts, current_setting('application_name'));
      end if;
      if tg_op = 'UPDATE' and new.finished_at is not null
         and (old.finished_at is distinct from new.finished_at or old.fetch_status is distinct from new.fetch_status or old.counts is distinct from new.counts) then
        insert into crash_audit.result_writes (sync_id, app, fetch_status, attempt)
        values (new.id::text, current_setting('application_name'), new.fetch_status, new.attempts);
      end if;
      return new;
    end $$;
    create trigger crash_audit after insert or update on syncs for each row execute function crash_audit.record();
  `);
}

/** Every pair of syncs of one connection whose running intervals overlapped, from the audit. */
export function overlappingRuns(transitions: Transition[]): string[] {
  const problems: string[] = [];
  const runningNow = new Map<string, Set<string>>();
  for (const t of [...transitions].sort((a, b) => a.at.getTime() - b.at.getTime())) {
    const set = runningNow.get(t.connection_id) ?? new Set<string>();
    runningNow.set(t.connection_id, set);
    if (t.to_state === 'running') {
      if (set.size > 0 && !set.has(t.sync_id)) problems.push(`${t.connection_id}: ${t.sync_id} started running while ${[...set].join(', ')} ran`);
      set.add(t.sync_id);
    } else {
      set.delete(t.sync_id);
    }
  }
  return problems;
}

export interface ClusterOptions {
  users: number;
  connectionsPerUser: number;
  /** Indexes (in connect order) of connections that stay user_ok; the others become user_slow. */
  fast: Set<number>;
  workers: string[];
  workerConcurrency: number;
}

export interface Cluster {
  db: Db;
  baseUrl: string;
  api: MooringProcess;
  workers: Map<string, MooringProcess>;
  mh: MoneyhubClient;
  conns: Conn[];
  startWorker(name: string): Promise<MooringProcess>;
  allSyncs(): Promise<SyncDbRow[]>;
  transitions(): Promise<Transition[]>;
  resultWrites(): Promise<ResultWrite[]>;
  describeState(): Promise<string>;
  /** Syncs created since `before`, per connection. */
  newSyncs(before: Set<string>): Promise<Map<string, SyncDbRow[]>>;
  /** Waits until every connection has a finished sync created since `before` and nothing is queued or running. */
  waitRoundDone(before: Set<string>, what: string): Promise<Map<string, SyncDbRow[]>>;
  /** Running syncs per worker (by PGAPPNAME) that claimed them. */
  heldByWorker(): Promise<Map<string, string[]>>;
  connectionJson(c: Conn): Promise<Record<string, unknown>>;
  advanceClock(by: string): Promise<void>;
  expectNoDuplicatedData(): Promise<void>;
  stop(): Promise<void>;
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const testDb: TestDb = await createTestDb();
  const db = testDb.db;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mooring-crash-'));
  const stop = async (): Promise<void> => {
    await killAllMooring();
    await testDb.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    if (testDb.url === null) throw new Error('crash tests need PostgreSQL (TEST_DATABASE_URL)');
    await installAudit(db);
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const env: Record<string, string> = {
      DATABASE_URL: testDb.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_URL: baseUrl,
      MOORING_ADMIN_TOKEN: ADMIN_TOKEN,
      MOORING_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      MOORING_DATA_DIR: dataDir,
      MOORING_SANDBOX_MTLS_PORT: String(await freePort()),
      MOORING_SANDBOX_CLOCK_START: DOMAIN_START.toISOString(),
      LOG_LEVEL: 'warn',
      MOORING_WORKER_CONCURRENCY: String(opts.workerConcurrency),
      DATABASE_POOL_SIZE: '6',
    };
    const api = spawnMooring('api', ['api'], { ...env, PGAPPNAME: 'api' });
    await api.waitForOutput(/Mooring is running at/, 30_000);
    const workers = new Map<string, MooringProcess>();
    const startWorker = async (name: string): Promise<MooringProcess> => {
      const w = spawnMooring(name, ['worker'], { ...env, PGAPPNAME: name });
      workers.set(name, w);
      await w.waitForOutput(/sync worker running/, 30_000);
      return w;
    };
    await Promise.all(opts.workers.map(startWorker));

    const { mh } = await officialClient(baseUrl, 'client_secret_basic');
    const conns: Conn[] = [];
    for (let u = 0; u < opts.users; u += 1) {
      const { userId } = await mh.registerUser({ clientUserId: `crash-${u}` });
      for (let i = 0; i < opts.connectionsPerUser; i += 1) {
        const { connectionId } = await connect(mh, userId, MODELO_ID, 'user_ok');
        conns.push({ userId, connectionId, slow: !opts.fast.has(conns.length) });
      }
    }
    for (const c of conns.filter((x) => x.slow)) {
      const r = await sandbox(baseUrl, 'POST', `/sandbox/connections/${encodeURIComponent(c.connectionId)}/behaviour`, { username: 'user_slow' });
      if (r.status !== 200) throw new Error(`could not make ${c.connectionId} slow: ${r.status} ${JSON.stringify(r.json)}`);
    }

    const allSyncs = async (): Promise<SyncDbRow[]> =>
      (await db.query<SyncDbRow>(
        `select id::text as id, connection_id, action, method, attended, state, fetch_status, attempts, error_detail, finished_at, counts
           from syncs order by created_at, id`,
      )).rows;
    const describeState = async (): Promise<string> => {
      const active = (await allSyncs()).filter((r) => r.state !== 'done');
      return [
        `syncs not done: ${JSON.stringify(active)}`,
        `processes: ${[api, ...workers.values()].map((p) => `${p.name}(pid ${p.pid}) ${p.alive() ? 'alive' : 'exited'}`).join(', ')}`,
        ...[...workers.values()].map((w) => `--- ${w.name} output (tail):\n${w.output().slice(-2000)}`),
        `--- api output (tail):\n${api.output().slice(-2000)}`,
      ].join('\n');
    };
    const newSyncs = async (before: Set<string>): Promise<Map<string, SyncDbRow[]>> => {
      const by = new Map<string, SyncDbRow[]>(conns.map((c) => [c.connectionId, []]));
      for (const s of await allSyncs()) if (!before.has(s.id)) by.get(s.connection_id)?.push(s);
      return by;
    };
    return {
      db,
      baseUrl,
      api,
      workers,
      mh,
      conns,
      startWorker,
      allSyncs,
      async transitions() {
        return (await db.query<Transition>('select sync_id, connection_id, from_state, to_state, attempt, app, at from crash_audit.transitions order by seq')).rows;
      },
      async resultWrites() {
        return (await db.query<ResultWrite>('select sync_id, app, fetch_status, attempt, at from crash_audit.result_writes order by seq')).rows;
      },
      describeState,
      newSyncs,
      waitRoundDone: (before, what) =>
        waitUntil(what, WAIT_MS, async () => {
          const by = await newSyncs(before);
          const complete = [...by.values()].every((list) => list.length > 0 && list.every((s) => s.state === 'done'));
          const active = (await db.query('select 1 from syncs where state <> $1', ['done'])).rowCount;
          return complete && active === 0 ? by : undefined;
        }, { intervalMs: 250, diagnose: describeState }),
      async heldByWorker() {
        const r = await db.query<{ app: string; sync_id: string }>(
          `select t.app, t.sync_id from crash_audit.transitions t join syncs s on s.id::text = t.sync_id
            where t.to_state = 'running' and s.state = 'running' and t.attempt = s.attempts`,
        );
        const by = new Map<string, string[]>();
        for (const row of r.rows) by.set(row.app, [...(by.get(row.app) ?? []), row.sync_id]);
        return by;
      },
      async connectionJson(c) {
        const list = (await mh.getUserConnections({ userId: c.userId })).data as unknown as Record<string, unknown>[];
        const found = list.find((x) => x.id === c.connectionId);
        if (found === undefined) throw new Error(`connection ${c.connectionId} not listed`);
        return found;
      },
      async advanceClock(by) {
        const r = await sandbox(baseUrl, 'POST', '/sandbox/clock', { advance: by });
        expect(r.status).toBe(200);
      },
      async expectNoDuplicatedData() {
        const dupTx = await db.query('select account_id, provider_transaction_id, count(*) from transactions group by 1, 2 having count(*) > 1');
        expect(dupTx.rows, 'a transaction is stored twice').toEqual([]);
        const dupAcc = await db.query('select connection_id, provider_account_id, count(*) from accounts group by 1, 2 having count(*) > 1');
        expect(dupAcc.rows, 'an account is stored twice').toEqual([]);
        // Every stored transaction was counted as added by exactly one finished sync of its
        // connection: an interrupted run left nothing behind, and a re-run added nothing twice.
        const ledger = await db.query<{ connection_id: string; added: string; stored: string }>(
          `select c.id as connection_id,
                  (select coalesce(sum((s.counts->>'transactionsAdded')::int), 0) from syncs s where s.connection_id = c.id and s.state = 'done')::text as added,
                  (select count(*) from transactions t join accounts a on a.id = t.account_id where a.connection_id = c.id)::text as stored
             from connections c`,
        );
        for (const row of ledger.rows) {
          expect({ connection: row.connection_id, transactionsAddedBySyncs: Number(row.added) }).toEqual({ connection: row.connection_id, transactionsAddedBySyncs: Number(row.stored) });
        }
        for (const c of conns) {
          const accounts = await db.query('select 1 from accounts where connection_id = $1', [c.connectionId]);
          expect(accounts.rowCount, `accounts of ${c.connectionId}`).toBe(2);
        }
      },
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
