/**
 * Prometheus metrics (prom-client). Counters and histograms live in the process that does the
 * work: syncs and provider calls in whichever process runs them (API or worker), webhook
 * deliveries in the process that delivers. Gauges are read from the database at scrape time (see
 * repository.ts), so any process answers them for the whole deployment.
 *
 * API processes serve /metrics on their HTTP port; a worker-only process serves it on
 * MOORING_METRICS_PORT when set (serveWorkerMetrics). With MOORING_METRICS_TOKEN set, both answer
 * only a request bearing it (checked before any database read), and 401 otherwise.
 */
import { createServer, type Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../clock.ts';
import type { Queryable } from '../db/db.ts';
import { bearerToken, sameSecret } from '../crypto/compare.ts';
import { AppError } from '../errors.ts';
import type { CallLogObserver } from '../provider-calls/writer.ts';
import { LATENCY_BUCKETS_MS } from '../provider-calls/rollup.ts';
import { DAY_MS } from '../time.ts';
import { metricsRepository } from './repository.ts';

/** The consent-expiry gauge looks this far ahead. */
export const CONSENT_EXPIRY_HORIZON_DAYS = 7;

export type WebhookAttemptOutcome = 'delivered' | 'failed' | 'abandoned';

export interface Metrics {
  registry: Registry;
  /** Feeds the sync and provider-call counters (the provider call log calls it). */
  callLog: CallLogObserver;
  webhookAttempt(outcome: WebhookAttemptOutcome): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const syncs = new Counter({
    name: 'mooring_syncs_total', help: 'Syncs ended, by provider and outcome (success, partial, the provider\'s error kind, or the fetch status Mooring decided alone)',
    labelNames: ['provider', 'outcome'] as const, registers,
  });
  const calls = new Counter({
    name: 'mooring_provider_calls_total', help: 'HTTP calls to providers, by provider and error kind (none: success)',
    labelNames: ['provider', 'error_kind'] as const, registers,
  });
  const callDuration = new Histogram({
    name: 'mooring_provider_call_duration_seconds', help: 'Duration of HTTP calls to providers, by provider',
    labelNames: ['provider'] as const, buckets: LATENCY_BUCKETS_MS.map((ms) => ms / 1000), registers,
  });
  const deliveries = new Counter({
    name: 'mooring_webhook_deliveries_total', help: 'Webhook delivery attempts, by outcome (delivered, failed: to be retried, abandoned: after 24 hours of failures)',
    labelNames: ['outcome'] as const, registers,
  });
  return {
    registry,
    callLog: {
      call(row) {
        calls.inc({ provider: row.providerId, error_kind: row.errorKind ?? 'none' });
        callDuration.observe({ provider: row.providerId }, row.latencyMs / 1000);
      },
      syncFinished(providerId, outcome) {
        syncs.inc({ provider: providerId, outcome });
      },
    },
    webhookAttempt(outcome) {
      deliveries.inc({ outcome });
    },
  };
}

export interface GaugeDeps {
  db: Queryable;
  clock: Clock;
  log: { warn(obj: object, msg: string): void };
}

/** The database-derived gauges, set at each scrape; a failed read leaves them out of that scrape. */
function databaseGauges(registry: Registry, deps: GaugeDeps): () => Promise<void> {
  const registers = [registry];
  const lag = new Gauge({ name: 'mooring_scheduler_lag_seconds', help: 'Seconds since the oldest due connection\'s next sync time, not queued yet (0: none waiting)', registers });
  const depth = new Gauge({ name: 'mooring_sync_queue_depth', help: 'Syncs queued or running, by state', labelNames: ['state'] as const, registers });
  const webhookAge = new Gauge({ name: 'mooring_webhook_oldest_pending_seconds', help: 'Age of the oldest webhook event awaiting delivery (0: none)', registers });
  const expiring = new Gauge({ name: 'mooring_consents_expiring_soon', help: `Connections whose consent expires within ${CONSENT_EXPIRY_HORIZON_DAYS} days`, registers });
  const all = [lag, depth, webhookAge, expiring];
  const repo = metricsRepository(deps.db);
  const secondsSince = (now: Date, then: Date | null): number => (then === null ? 0 : Math.max(0, (now.getTime() - then.getTime()) / 1000));
  return async () => {
    const now = deps.clock.now();
    try {
      const g = await repo.gauges(now, new Date(now.getTime() + CONSENT_EXPIRY_HORIZON_DAYS * DAY_MS));
      lag.set(secondsSince(now, g.oldestDueSyncAt));
      depth.set({ state: 'queued' }, g.syncsQueued);
      depth.set({ state: 'running' }, g.syncsRunning);
      webhookAge.set(secondsSince(now, g.oldestPendingWebhookAt));
      expiring.set(g.consentsExpiringSoon);
    } catch (err) {
      for (const gauge of all) gauge.reset();
      deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'reading the metrics gauges failed; this scrape has none');
    }
  };
}

/**
 * Whether a request with this Authorization header may read /metrics: always when no token is set,
 * else only with `Bearer <token>` (compared in constant time, over digests of equal length).
 */
export function metricsAuthorized(token: string | null, authorization: string | undefined): boolean {
  if (token === null) return true;
  const given = bearerToken(authorization);
  return given !== null && sameSecret(given, token);
}

/** The 401 of a /metrics request without the metrics token (WWW-Authenticate: Bearer). */
export const metricsUnauthorized = (): AppError =>
  new AppError(401, 'unauthorized', '/metrics needs the metrics token (MOORING_METRICS_TOKEN) as a bearer token', {
    details: { header: 'authorization', scheme: 'Bearer' },
    headers: { 'www-authenticate': 'Bearer' },
  });

/** /metrics on the API: process metrics, a latency histogram per route, the work counters and the database gauges. */
export function registerMetrics(app: FastifyInstance, metrics: Metrics, gauges: GaugeDeps, token: string | null = null): void {
  const { registry } = metrics;
  const refresh = databaseGauges(registry, gauges);
  const duration = new Histogram({
    name: 'mooring_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  app.addHook('onResponse', async (req, reply) => {
    duration.observe({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    if (!metricsAuthorized(token, req.headers.authorization)) throw metricsUnauthorized();
    await refresh();
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}

/** /metrics of a worker-only process (no HTTP app): the same registry on its own port. */
export async function serveWorkerMetrics(
  metrics: Metrics, gauges: GaugeDeps, host: string, port: number, token: string | null = null,
): Promise<{ port: number; close(): Promise<void> }> {
  const refresh = databaseGauges(metrics.registry, gauges);
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (!metricsAuthorized(token, req.headers.authorization)) {
      const err = metricsUnauthorized();
      res.writeHead(err.statusCode, { 'content-type': 'application/json; charset=utf-8', ...err.headers })
        .end(JSON.stringify({ code: err.code, message: err.message, details: err.details }));
      return;
    }
    void refresh().then(() => metrics.registry.metrics()).then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
