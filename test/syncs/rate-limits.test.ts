/**
 * An upstream's 429 (SPEC sections 5 and 10): the sync is rate-limited, never failed; the
 * connection keeps its status and freshness; nothing goes to the provider for that connection
 * before the reset it gave. Through HTTP and the official client, against the legacy sandbox bank
 * (Aviva) with `user_ratelimited` (its syncs from the second on answer 429, Retry-After 3600).
 * Also the edge's reading of rate-limit headers, against a throwaway HTTP server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atEdge, callProvider, retryAfterMsOf } from '../../src/providers/http.ts';
import { ProviderError } from '../../src/providers/provider.ts';
import { serverWithClient } from '../helpers/fixture.ts';
import { connect, rejection, sandbox } from '../helpers/moneyhub.ts';
import { providerId } from './scenario.ts';

interface ConnectionView {
  status: string;
  error: string | null;
  lastUpdated: string | null;
  nextSyncAt: string | null;
  rateLimitedUntil: string | null;
  remediation: { action: string; reason: string; retryAfter?: string };
}

interface SyncView {
  fetchStatus: string | null;
  errorDetail: string | null;
  action: string;
}

describe('a provider that answers 429 (Aviva, user_ratelimited)', () => {
  const env = serverWithClient();
  let userId = '';
  let connectionId = '';

  const domainNow = async (): Promise<number> => Date.parse((await sandbox(env.ts.baseUrl, 'GET', '/sandbox/clock')).json.now as string);
  const connection = async (): Promise<ConnectionView> => {
    const c = (await env.mh.getUserConnections({ userId })).data.find((x) => x.id === connectionId);
    if (c === undefined) throw new Error('the connection is not listed');
    return c as unknown as ConnectionView;
  };
  const syncs = async (): Promise<SyncView[]> => (await env.mh.getConnectionSyncs({ userId, connectionId })).data as unknown as SyncView[];
  /** The bank's own count of this customer's syncs (each /portfolio call counts one, a 429 included). */
  const bankCalls = async (): Promise<number> => {
    const r = await env.ts.testDb.db.query<{ fetch_count: number }>(
      'select fetch_count from sandbox_credentials where id = (select provider_ref from connections where id = $1)',
      [connectionId],
    );
    return r.rows[0]?.fetch_count ?? -1;
  };
  const avivaHealth = async (): Promise<string> => {
    const all = (await env.mh.listConnections()) as unknown as { name: string; status: { sync: string } }[];
    return all.find((c) => c.name === 'Aviva')?.status.sync ?? 'missing';
  };

  beforeAll(async () => {
    userId = (await env.mh.registerUser({ clientUserId: 'rate-limits' })).userId;
    connectionId = (await connect(env.mh, userId, await providerId(env.mh, 'Aviva'), 'user_ratelimited')).connectionId;
  });

  it('records the sync after the first as rate-limited and leaves the connection ok, as fresh as before', async () => {
    const first = await connection();
    expect(first).toMatchObject({ status: 'ok', error: null, rateLimitedUntil: null });
    expect((await syncs()).map((s) => s.fetchStatus)).toEqual(['success']);
    expect(await bankCalls()).toBe(1);

    // The nightly sync (02:00 UTC) is the bank's second: it answers 429, Retry-After 3600.
    await sandbox(env.ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT18H' });
    const before = await domainNow();
    const run = await sandbox(env.ts.baseUrl, 'POST', '/sandbox/scheduler/run');
    expect(run.json.ran).toBe(1);
    const after = await domainNow();
    expect(await bankCalls()).toBe(2);

    const [latest] = await syncs();
    expect(latest).toMatchObject({ fetchStatus: 'rate-limited', action: 'auto-update' });
    expect(latest?.errorDetail).toContain('Aviva');
    const c = await connection();
    expect(c).toMatchObject({ status: 'ok', error: null, lastUpdated: first.lastUpdated });
    const until = Date.parse(c.rateLimitedUntil ?? '');
    expect(until).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(until).toBeLessThanOrEqual(after + 3_600_000);
    expect(latest?.errorDetail).toContain(c.rateLimitedUntil);
    expect(Date.parse(c.nextSyncAt ?? '')).toBeGreaterThanOrEqual(until);
    expect(c.remediation).toMatchObject({ action: 'wait', retryAfter: c.rateLimitedUntil });
    // A 429 is no failure of the provider: its health does not drop.
    expect(await avivaHealth()).toBe('AVAILABLE');
  });

  it('answers a requested sync before the reset without calling the bank, and says why', async () => {
    const recorded = (await syncs()).length;
    const { rateLimitedUntil } = await connection();
    for (const attended of [true, false]) {
      const err = await rejection(env.mh.syncUserConnection({ userId, connectionId, ...(attended ? { customerIpAddress: '203.0.113.7' } : {}) }));
      expect(err.response?.statusCode).toBe(429);
      expect(err.error).toBe('provider_rate_limited');
      expect(err.error_description).toContain('Aviva');
      expect(err.error_description).toContain(rateLimitedUntil);
      expect(Number(err.response?.headers['retry-after'])).toBeGreaterThan(0);
      expect((JSON.parse(err.response?.body ?? '{}') as { details?: { retryAfter?: string } }).details?.retryAfter).toBe(rateLimitedUntil);
    }
    expect((await sandbox(env.ts.baseUrl, 'POST', '/sandbox/scheduler/run')).json.ran).toBe(0);
    expect(await bankCalls()).toBe(2);
    expect(await syncs()).toHaveLength(recorded);
    expect(await connection()).toMatchObject({ status: 'ok', error: null, rateLimitedUntil });
  });

  it('calls the bank again once the reset has passed', async () => {
    await sandbox(env.ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT61M' });
    expect((await connection()).rateLimitedUntil).toBeNull();
    const res = await env.mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.7' });
    expect(res.data.status).toBe('error');
    expect(await bankCalls()).toBe(3);
    expect((await syncs())[0]).toMatchObject({ fetchStatus: 'rate-limited', action: 'client-update' });
    const held = await connection();
    expect(held).toMatchObject({ status: 'ok', error: null });
    expect(held.rateLimitedUntil).not.toBeNull();

    // The bank stops limiting: after the new reset, a sync brings data and moves lastUpdated.
    expect((await sandbox(env.ts.baseUrl, 'POST', `/sandbox/connections/${connectionId}/behaviour`, { username: 'user_ok' })).status).toBe(200);
    await sandbox(env.ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT61M' });
    expect((await env.mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.7' })).data.status).toBe('ok');
    expect(await bankCalls()).toBe(4);
    const repaired = await connection();
    expect(repaired).toMatchObject({ status: 'ok', error: null, rateLimitedUntil: null, remediation: { action: 'none' } });
    expect(Date.parse(repaired.lastUpdated ?? '')).toBeGreaterThan(Date.parse(held.lastUpdated ?? ''));
  });

  it('documents rate-limited in the OpenAPI schema of a sync and rateLimitedUntil on a connection', async () => {
    const doc = JSON.stringify(await (await fetch(`${env.ts.baseUrl}/docs/json`)).json());
    expect(doc).toContain('rate-limited');
    expect(doc).toContain('rateLimitedUntil');
  });
});

describe('rate-limit headers at the provider edge', () => {
  let server: Server;
  let base = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const seconds = url.searchParams.get('seconds');
      const inMs = url.searchParams.get('dateIn');
      if (seconds !== null) headers['retry-after'] = seconds;
      if (inMs !== null) headers['retry-after'] = new Date(Date.now() + Number(inMs)).toUTCString();
      const reset = url.searchParams.get('reset');
      if (reset !== null) headers['x-ratelimit-reset'] = reset;
      res.writeHead(url.pathname === '/busy' ? 429 : 503, headers).end('{"error":"too_many_requests"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  const failureOf = async (path: string): Promise<ProviderError> => {
    try {
      await atEdge('Example Bank', undefined, () => callProvider({ method: 'GET', url: `${base}${path}`, endpoint: path, timeoutMs: 5_000 }));
    } catch (err) {
      if (err instanceof ProviderError) return err;
      throw err;
    }
    throw new Error('expected a ProviderError');
  };

  it('reads Retry-After as delta-seconds', async () => {
    const e = await failureOf('/busy?seconds=120');
    expect(e.kind).toBe('rate_limited');
    expect(e.retryAfterMs).toBe(120_000);
    expect(e.safeDetail).toContain('Example Bank');
  });

  it('reads Retry-After as an HTTP-date, against the answer\'s own Date header', async () => {
    const e = await failureOf('/busy?dateIn=90000');
    expect(e.kind).toBe('rate_limited');
    // Both dates are whole seconds of the server's clock.
    expect(e.retryAfterMs).toBeGreaterThanOrEqual(89_000);
    expect(e.retryAfterMs).toBeLessThanOrEqual(91_000);
  });

  it('reads X-RateLimit-Reset as seconds until the reset, and leaves the wait unknown without headers', async () => {
    expect((await failureOf('/busy?reset=45')).retryAfterMs).toBe(45_000);
    const none = await failureOf('/busy');
    expect(none.kind).toBe('rate_limited');
    expect(none.retryAfterMs).toBeUndefined();
    // Only a 429 carries a wait: a 503 with Retry-After is an unavailable provider, decided as before.
    const down = await failureOf('/down?seconds=30');
    expect(down.kind).toBe('unavailable');
    expect(down.retryAfterMs).toBeUndefined();
  });

  it('parses each header form exactly (pure)', () => {
    const date = 'Wed, 21 Oct 2015 07:27:00 GMT';
    const h = (o: Record<string, string>) => new Headers(o);
    expect(retryAfterMsOf(h({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT', date }), 0)).toBe(60_000);
    expect(retryAfterMsOf(h({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }), Date.parse(date) + 30_000)).toBe(30_000);
    expect(retryAfterMsOf(h({ 'retry-after': 'Wed, 21 Oct 2015 07:20:00 GMT', date }), 0)).toBe(0);
    expect(retryAfterMsOf(h({ 'ratelimit-reset': '7' }), 0)).toBe(7_000);
    expect(retryAfterMsOf(h({ 'x-ratelimit-reset': String(Date.parse('2015-10-21T07:29:00Z') / 1000), date }), 0)).toBe(120_000);
    expect(retryAfterMsOf(h({ 'retry-after': 'soon' }), 0)).toBeUndefined();
    expect(retryAfterMsOf(h({ 'retry-after': '99999999' }), 0)).toBe(31 * 24 * 3_600_000);
  });
});
