/**
 * Assembles Mooring from a Config: database (migrated), keys, clock, catalog, adapters, the sync
 * engine and — by role — the HTTP app and/or a sync worker (claiming from the syncs table, the queue). main.ts calls it to run;
 * tests call it to get a real server on a real database.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type Provider from 'oidc-provider';
import { buildApp } from './app.ts';
import { systemClock, type MovableClock } from './clock.ts';
import type { Config } from './config.ts';
import { openDb, type Db } from './db/db.ts';
import { migrate } from './db/migrate.ts';
import { readSetting, sealedSettingOrCreate, settingOrCreate } from './db/settings.ts';
import { loadOrCreateKeys } from './oauth/keys.ts';
import { resolveSecretBox } from './crypto/key.ts';
import { resealSecrets } from './crypto/reseal.ts';
import { purgeExpiredOidcModels } from './oauth/adapter.ts';
import { journeysRepository } from './journeys/repository.ts';
import { createCatalog, sandboxCatalog, sandboxOnly, type Catalog } from './providers/catalog.ts';
import { adapterFor } from './providers/provider.ts';
import { createProviderAdapters } from './providers/registry.ts';
import { CLOCK_OFFSET_SETTING, usableClockOffset } from './sandbox/control.ts';
import { syncEngine, type SyncEngine } from './syncs/engine.ts';
import { syncRunner } from './syncs/runner.ts';
import { syncScheduler } from './syncs/scheduler.ts';
import { providerCallLog, type ProviderCallLog } from './provider-calls/writer.ts';
import { createMetrics, serveWorkerMetrics } from './metrics/metrics.ts';
import { startWorker, type Worker } from './syncs/worker.ts';
import { connectionEvents } from './webhooks/events.ts';
import { webhookDispatcher } from './webhooks/dispatcher.ts';
import { resolveTimers, type Timers } from './timers.ts';
import { loadSandboxPki, type SandboxPki } from './sandbox/pki.ts';
import { SandboxObBanks, sandboxMtlsUrl, sandboxOpenBankingSettings, startSandboxMtlsListener, type SandboxBankDeps } from './sandbox/banks/index.ts';

const WEBHOOK_CONCURRENCY = 20;
const JOURNEY_RETENTION_MS = 24 * 3_600_000;

export type Role = 'all' | 'api' | 'worker';

export interface Server {
  /** The HTTP app (null for a worker-only process). */
  app: FastifyInstance | null;
  oidc: Provider | null;
  db: Db;
  clock: MovableClock;
  catalog: Catalog;
  engine: SyncEngine;
  /** This process's provider call log (flush it to read its writes). */
  callLog: ProviderCallLog;
  /** Sandbox mode: the sandbox PKI (Mooring's certificates and keys at the sandbox FAPI banks). */
  sandboxPki: SandboxPki | null;
  /** Sandbox mode, API processes: the URL of the sandbox banks' mutual-TLS listener. */
  sandboxMtlsUrl: string | null;
  close(): Promise<void>;
}

export interface ServerOptions {
  config: Config;
  logger: FastifyBaseLogger;
  adminToken: string;
  role?: Role;
  /** Start the sync workers (claiming from the syncs table, the one queue). Off: syncs run in the requesting process only. */
  jobs?: boolean;
  /** An already-open database (tests); otherwise one is opened from the config. */
  db?: Db;
  /** Intervals, leases and time-outs (default DEFAULT_TIMERS); tests make them short. */
  timers?: Partial<Timers>;
  onProgress?: (msg: string) => void;
  /** Real time for security timers (admin throttle and sessions); tests inject it. */
  securityNow?: () => number;
  /** Told how long each answer of the sandbox banks' mutual-TLS listener took, in ms (benchmarks). */
  onSandboxBankCall?: (elapsedMs: number) => void;
}

export async function createServer(opts: ServerOptions): Promise<Server> {
  const { config, logger: log } = opts;
  const role = opts.role ?? 'all';
  const progress = opts.onProgress ?? (() => undefined);
  const timers = resolveTimers(opts.timers);
  if (config.trustProxy === true && role !== 'worker') {
    log.warn('TRUST_PROXY=true trusts every X-Forwarded-For hop, so a client can forge its address (the admin lockout and the customer IP sent to banks); set TRUST_PROXY to the number of proxies in front of Mooring, e.g. TRUST_PROXY=1');
  }
  const ownsDb = opts.db === undefined;
  progress(config.databaseUrl === null ? `opening the embedded database in ${config.dataDir}` : 'connecting to PostgreSQL');
  const db = opts.db ?? (await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize }));
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.reverse()) await c().catch((err: unknown) => log.warn({ err: String(err) }, 'error while closing'));
    if (ownsDb) await db.close();
  };
  try {
    await migrate(db, progress);
    const { box: secrets } = resolveSecretBox(config);
    // Secrets stored before they were sealed (an upgrade) are sealed now; afterwards this finds nothing.
    const sealedNow = await resealSecrets(db, secrets, { plaintextOnly: true, progress: (m) => progress(`sealing secrets stored in plain text: ${m}`) });
    if (sealedNow.resealed > 0) progress(`sealed ${sealedNow.resealed} secret(s) stored in plain text by an earlier version`);
    const keys = await loadOrCreateKeys(db, secrets);
    const clock = systemClock();
    // Closed last (closers run in reverse): the calls of syncs and requests still finishing are written.
    const metrics = createMetrics();
    const callLog = providerCallLog({ db, clock, log, enabled: config.providerCallLog, retentionDays: config.providerCallRetentionDays, observer: metrics.callLog });
    closers.push(() => callLog.close());
    if (config.sandbox && config.sandboxClockStart !== null) {
      // First start of this database only: every later start (and every other process) follows the stored offset.
      const start = config.sandboxClockStart.getTime();
      await settingOrCreate(db, CLOCK_OFFSET_SETTING, () => start - Date.now());
    }
    if (!config.sandbox) {
      // The sandbox clock is a sandbox tool: off sandbox mode (e.g. once a providers file lists providers) real providers run on real time.
      const stored = await readSetting<unknown>(db, CLOCK_OFFSET_SETTING);
      const offset = stored === undefined ? 0 : usableClockOffset(stored);
      if (offset !== 0) {
        log.warn({ stored }, 'sandbox mode is off: ignoring the stored sandbox clock offset and running on real time (start with MOORING_SANDBOX=true to use it, or DELETE /sandbox/clock there to clear it)');
      }
    }
    let warnedBadOffset = false;
    const refreshClock = async (): Promise<void> => {
      if (!config.sandbox) {
        clock.setOffsetMs(0);
        return;
      }
      const stored = await readSetting<unknown>(db, CLOCK_OFFSET_SETTING);
      const offset = stored === undefined ? 0 : usableClockOffset(stored);
      if (offset === null && !warnedBadOffset) {
        // An offset no valid move could have stored (older versions accepted any): run on real time instead.
        warnedBadOffset = true;
        log.warn({ stored }, 'ignoring an unusable sandbox clock offset; the clock runs on real time (DELETE /sandbox/clock clears it)');
      }
      clock.setOffsetMs(offset ?? 0);
    };
    await refreshClock();
    if (config.sandbox) {
      const timer = setInterval(() => void refreshClock().catch(() => undefined), timers.clockRefreshMs);
      timer.unref();
      closers.push(async () => clearInterval(timer));
    }
    const sandboxClientSecret = (await sealedSettingOrCreate(db, 'sandbox_client_secret', secrets, () => randomBytes(24).toString('base64url'))).value;
    // Every process of a sandbox deployment shares the sandbox PKI through the data directory.
    const sandboxPki = config.sandbox ? loadSandboxPki(config.dataDir, [new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, '')]) : null;
    const sandboxUrls = { publicUrl: config.publicUrl, mtlsUrl: sandboxMtlsUrl(config.publicUrl, config.sandboxMtlsPort) };
    const openbankingFor = (slug: string) => (sandboxPki === null ? undefined : sandboxOpenBankingSettings(sandboxPki, sandboxUrls, slug));
    // The operator's providers (the providers file), and the sandbox's in sandbox mode; loadConfig kept their names and ids apart.
    const catalog = createCatalog([...(config.sandbox ? sandboxCatalog(config.publicUrl, openbankingFor) : []), ...config.providers]);
    const adapters = createProviderAdapters({ sandboxClientSecret, timeoutMs: timers.providerTimeoutMs, db, secrets });
    closers.push(() => adapters.close());
    // Fails start-up if a provider names an adapter this version lacks (the providers file check refuses those already).
    for (const p of catalog.all()) adapterFor(adapters, p);
    // Connections whose provider left the catalog were taken off the schedule; those whose provider is back return to it.
    const returned = await syncScheduler({ db, catalog, clock }).returnToSchedule();
    if (returned > 0) progress(`${returned} connection(s) of providers back in the catalog returned to the sync schedule`);

    const events = connectionEvents({ catalog, clock });
    const dispatcher = webhookDispatcher({
      db, secrets, clock, log, concurrency: WEBHOOK_CONCURRENCY,
      policy: { allowPrivate: config.webhookAllowPrivate, allowLoopback: config.sandbox },
      deliveryTimeoutMs: timers.webhookDeliveryTimeoutMs,
      onAttempt: (outcome) => metrics.webhookAttempt(outcome),
    });
    closers.push(() => dispatcher.stop());
    const engine = syncEngine({
      db, catalog, clock, log, timers,
      runClaimed: syncRunner({ db, secrets, catalog, adapters, clock, log, afterSync: events.afterSync, callLog }),
    });

    let worker: Worker | null = null;
    if (role !== 'api' && (opts.jobs ?? true)) {
      worker = await startWorker({
        engine, concurrency: config.workerConcurrency, beforeTick: refreshClock, log, timers,
        loops: [
          { name: 'webhook deliveries', everyMs: timers.webhookPollMs, run: () => dispatcher.pump() },
          { name: 'connection events', everyMs: timers.eventSweepMs, run: () => events.sweep(db) },
          {
            name: 'purge',
            everyMs: timers.purgeEveryMs,
            run: async () => {
              await purgeExpiredOidcModels(db);
              await journeysRepository(db).purgeOlderThan(new Date(clock.now().getTime() - JOURNEY_RETENTION_MS));
              await callLog.prune();
            },
          },
        ],
      });
      const w = worker;
      closers.push(() => w.stop());
      if (role === 'worker' && config.metricsPort !== null) {
        const served = await serveWorkerMetrics(metrics, { db, clock, log }, config.host, config.metricsPort, config.metricsToken);
        closers.push(() => served.close());
        progress(`worker metrics at http://${config.host}:${served.port}/metrics`);
      }
    }

    let app: FastifyInstance | null = null;
    let oidc: Provider | null = null;
    let mtlsUrl: string | null = null;
    if (role !== 'worker') {
      const banks = sandboxPki === null ? null : new SandboxObBanks({
        db, secrets, clock, catalog: sandboxOnly(catalog), pki: sandboxPki, publicUrl: config.publicUrl, mtlsUrl: sandboxMtlsUrl(config.publicUrl, config.sandboxMtlsPort), slowCallMs: timers.sandboxSlowCallMs,
      });
      const sandboxBanks: SandboxBankDeps | null = config.sandbox
        ? {
          db, clock, catalog: sandboxOnly(catalog), sandboxClientSecret, publicUrl: config.publicUrl, latencyMs: config.sandboxLatencyMs, slowCallMs: timers.sandboxSlowCallMs, openBanking: banks,
          // The operator's Enable Banking entries register their applications with the sandbox counterpart.
          enableBanking: { publicUrl: config.publicUrl, applications: catalog },
        }
        : null;
      const built = await buildApp({ config, db, clock, logger: log, catalog, adapters, keys, secrets, adminToken: opts.adminToken, sandboxBanks, engine, events, dispatcher, timers, callLog, metrics, ...(opts.securityNow !== undefined ? { securityNow: opts.securityNow } : {}) });
      app = built.app;
      oidc = built.oidc;
      const a = built.app;
      closers.push(() => a.close());
      if (banks !== null && sandboxBanks !== null) {
        const listener = await startSandboxMtlsListener({
          deps: sandboxBanks, banks, host: config.host, port: config.sandboxMtlsPort, logger: log, bodyLimitBytes: config.bodyLimitBytes, trustProxy: config.trustProxy,
          ...(opts.onSandboxBankCall !== undefined ? { onCall: opts.onSandboxBankCall } : {}),
        });
        closers.push(() => listener.close());
        banks.deps.mtlsUrl = sandboxMtlsUrl(config.publicUrl, listener.port);
        mtlsUrl = banks.deps.mtlsUrl;
        if (config.sandboxMtlsPort === 0) {
          // A port chosen by the system is known only now (single-process use: a worker elsewhere could not know it).
          sandboxUrls.mtlsUrl = mtlsUrl;
          for (const e of sandboxOnly(catalog).all()) if (e.openbanking !== undefined) e.openbanking = sandboxOpenBankingSettings(sandboxPki as SandboxPki, sandboxUrls, e.bankRef);
        }
        progress(`sandbox banks' mutual-TLS listener on ${mtlsUrl}`);
      }
    }
    return { app, oidc, db, clock, catalog, engine, callLog, sandboxPki, sandboxMtlsUrl: mtlsUrl, close: closeAll };
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }
}
