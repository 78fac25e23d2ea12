/**
 * Prometheus metrics at /metrics after real journeys, syncs and webhook deliveries against the
 * sandbox: the sync and provider-call counters with their labels, the call-duration histogram,
 * webhook delivery outcomes, and the database gauges (scheduler lag, queue depth, the oldest
 * pending webhook, consents expiring within 7 days) as the sandbox clock moves. With
 * MOORING_METRICS_TOKEN set, /metrics on both listeners (API, worker) answers only that bearer token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, officialClient, sandbox, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createServer } from '../../src/server.ts';
import { createTestDb } from '../helpers/db.ts';
import { TEST_DATA_DIR } from '../helpers/pki.ts';
import { ADMIN_TOKEN, freePort, startTestServer, TEST_ENCRYPTION_KEY, type TestServer } from '../helpers/server.ts';
import { setWebhook } from '../helpers/webhooks.ts';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';
import { MODELO_ID, providerId } from '../syncs/scenario.ts';

/** The samples of a Prometheus text exposition: `name{labels}` → value. */
async function scrape(baseUrl: string, token?: string): Promise<Map<string, number>> {
  const res = await fetch(`${baseUrl}/metrics`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

const sample = (m: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined => {
  const wanted = Object.entries(labels);
  for (const [key, value] of m) {
    const brace = key.indexOf('{');
    const n = brace === -1 ? key : key.slice(0, brace);
    if (n !== name) continue;
    const have = brace === -1 ? '' : key.slice(brace);
    if (wanted.every(([k, v]) => have.includes(`${k}="${v}"`)) && (wanted.length > 0 || brace === -1)) return value;
  }
  return undefined;
};

describe('/metrics after syncs, provider calls and webhook deliveries', () => {
  let ts: TestServer;
  let mh: MoneyhubClient;
  let receiver: Receiver;
  let userId = '';
  let aviva = '';

  beforeAll(async () => {
    ts = await startTestServer();
    const client = await officialClient(ts.baseUrl, 'client_secret_basic');
    mh = client.mh;
    receiver = await startReceiver();
    await setWebhook(ts.baseUrl, client.clientId, receiver.url);
    userId = (await mh.registerUser({ clientUserId: 'metrics' })).userId;
    aviva = await providerId(mh, 'Aviva');
    await connect(mh, userId, aviva, 'user_ratelimited');
    await connect(mh, userId, MODELO_ID, 'user_ok');
    // Aviva's nightly sync is its second: 429.
    await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT18H' });
    await sandbox(ts.baseUrl, 'POST', '/sandbox/scheduler/run');
  });
  afterAll(async () => {
    await ts?.stop();
    await receiver?.close();
  });

  it('counts syncs by provider and outcome, and provider calls by provider and error kind, with their durations', async () => {
    const m = await scrape(ts.baseUrl);
    expect(sample(m, 'mooring_syncs_total', { provider: aviva, outcome: 'success' })).toBe(1);
    expect(sample(m, 'mooring_syncs_total', { provider: aviva, outcome: 'rate_limited' })).toBe(1);
    expect(sample(m, 'mooring_syncs_total', { provider: MODELO_ID, outcome: 'success' })).toBe(2);
    expect(sample(m, 'mooring_provider_calls_total', { provider: aviva, error_kind: 'rate_limited' })).toBe(1);
    expect(sample(m, 'mooring_provider_calls_total', { provider: MODELO_ID, error_kind: 'none' })).toBeGreaterThan(3);
    const avivaCalls = (sample(m, 'mooring_provider_calls_total', { provider: aviva, error_kind: 'none' }) ?? 0) + 1;
    expect(sample(m, 'mooring_provider_call_duration_seconds_count', { provider: aviva })).toBe(avivaCalls);
    expect(sample(m, 'mooring_provider_call_duration_seconds_bucket', { provider: aviva, le: '+Inf' })).toBe(avivaCalls);
  });

  it('counts webhook deliveries by outcome', async () => {
    const m = await scrape(ts.baseUrl);
    expect(receiver.received.length).toBeGreaterThan(0);
    expect(sample(m, 'mooring_webhook_deliveries_total', { outcome: 'delivered' })).toBe(receiver.received.filter((r) => r.answered === 200).length);
  });

  it('reads the gauges from the database: nothing waiting after a scheduler run, then lag, a pending webhook and expiring consents as time passes', async () => {
    const settled = await scrape(ts.baseUrl);
    expect(sample(settled, 'mooring_scheduler_lag_seconds')).toBe(0);
    expect(sample(settled, 'mooring_sync_queue_depth', { state: 'queued' })).toBe(0);
    expect(sample(settled, 'mooring_sync_queue_depth', { state: 'running' })).toBe(0);
    expect(sample(settled, 'mooring_webhook_oldest_pending_seconds')).toBe(0);
    expect(sample(settled, 'mooring_consents_expiring_soon')).toBe(0);

    // Two days on, nobody ran the scheduler: both connections' next syncs are overdue.
    receiver.behaviour.status = 500;
    await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'P2D' });
    const late = await scrape(ts.baseUrl);
    expect(sample(late, 'mooring_scheduler_lag_seconds')).toBeGreaterThan(86_400);
    expect(sample(late, 'mooring_scheduler_lag_seconds')).toBeLessThanOrEqual(2 * 86_400 + 60);

    // The receiver fails now: the next run's events stay pending, and the failure is counted.
    await sandbox(ts.baseUrl, 'POST', '/sandbox/scheduler/run');
    await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT1M' });
    const failing = await scrape(ts.baseUrl);
    expect(sample(failing, 'mooring_webhook_deliveries_total', { outcome: 'failed' })).toBeGreaterThan(0);
    expect(sample(failing, 'mooring_webhook_oldest_pending_seconds')).toBeGreaterThanOrEqual(60);

    // Modelo's consent lasts 90 days: within 7 days of its end it is counted.
    await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'P85D' });
    expect(sample(await scrape(ts.baseUrl), 'mooring_consents_expiring_soon')).toBe(1);
  });
});

describe('/metrics of a worker-only process', () => {
  it('is served on MOORING_METRICS_PORT, with the database gauges', async () => {
    const testDb = await createTestDb();
    const port = await freePort();
    const config = loadConfig({}, {
      host: '127.0.0.1', port: 0, publicUrl: 'http://127.0.0.1:1', adminToken: ADMIN_TOKEN, dataDir: TEST_DATA_DIR, encryptionKey: TEST_ENCRYPTION_KEY, metricsPort: port,
    });
    const server = await createServer({ config, logger: createLogger('silent'), adminToken: ADMIN_TOKEN, db: testDb.db, role: 'worker' });
    try {
      expect(server.app).toBeNull();
      const m = await scrape(`http://127.0.0.1:${port}`);
      expect(sample(m, 'mooring_sync_queue_depth', { state: 'queued' })).toBe(0);
      expect(sample(m, 'mooring_scheduler_lag_seconds')).toBe(0);
      expect(sample(m, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    } finally {
      await server.close();
      await testDb.drop();
    }
  });
});

const METRICS_TOKEN = 'metrics-7Kq2pX9vLm4Rt8Wz3Nc6Hb1Yd5Fg0Js';

/** What /metrics answers without the metrics token: 401, WWW-Authenticate: Bearer, the error body. */
async function refused(baseUrl: string, authorization?: string): Promise<void> {
  const res = await fetch(`${baseUrl}/metrics`, authorization === undefined ? {} : { headers: { authorization } });
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toBe('Bearer');
  const body = (await res.json()) as { code: string; message: string; details: unknown };
  expect(body).toMatchObject({ code: 'unauthorized', message: expect.stringContaining('MOORING_METRICS_TOKEN'), details: expect.anything() });
  expect(JSON.stringify(body)).not.toContain('mooring_');
}

const WRONG = ['', 'Bearer ', `Bearer ${METRICS_TOKEN}x`, `Bearer ${METRICS_TOKEN.slice(1)}`, `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}`, `Bearer ${ADMIN_TOKEN}`];

describe('MOORING_METRICS_TOKEN', () => {
  it('stops start-up on a weak token, naming the variable', () => {
    for (const weak of ['short', 'ab'.repeat(20), 'has spaces in it but is long enough 0123456789']) {
      let err: unknown = null;
      try {
        loadConfig({ MOORING_METRICS_TOKEN: weak });
      } catch (e) {
        err = e;
      }
      expect(err, weak).toBeInstanceOf(ConfigError);
      expect((err as Error).message, weak).toContain('MOORING_METRICS_TOKEN');
    }
    expect(loadConfig({ MOORING_METRICS_TOKEN: METRICS_TOKEN }).metricsToken).toBe(METRICS_TOKEN);
    expect(loadConfig({}).metricsToken).toBeNull();
  });

  it('when set, /metrics of the API answers only its bearer token (401 with WWW-Authenticate: Bearer otherwise)', async () => {
    const ts = await startTestServer({ metricsToken: METRICS_TOKEN });
    try {
      await refused(ts.baseUrl);
      for (const authorization of WRONG) await refused(ts.baseUrl, authorization);
      const m = await scrape(ts.baseUrl, METRICS_TOKEN);
      expect(sample(m, 'mooring_sync_queue_depth', { state: 'queued' })).toBe(0);
    } finally {
      await ts.stop();
    }
  });

  it('when set, /metrics of a worker-only process answers only its bearer token', async () => {
    const testDb = await createTestDb();
    const port = await freePort();
    const config = loadConfig({}, {
      host: '127.0.0.1', port: 0, publicUrl: 'http://127.0.0.1:1', adminToken: ADMIN_TOKEN, dataDir: TEST_DATA_DIR, encryptionKey: TEST_ENCRYPTION_KEY, metricsPort: port, metricsToken: METRICS_TOKEN,
    });
    const server = await createServer({ config, logger: createLogger('silent'), adminToken: ADMIN_TOKEN, db: testDb.db, role: 'worker' });
    try {
      const base = `http://127.0.0.1:${port}`;
      await refused(base);
      for (const authorization of WRONG) await refused(base, authorization);
      const m = await scrape(base, METRICS_TOKEN);
      expect(sample(m, 'mooring_scheduler_lag_seconds')).toBe(0);
    } finally {
      await server.close();
      await testDb.drop();
    }
  });
});
