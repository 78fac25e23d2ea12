/**
 * The provider call log and provider health, as an operator reads them through the admin API
 * (GET /admin/api/provider-calls, GET /admin/api/providers/:id/health), with data from real
 * journeys and syncs against the sandbox banks: Modelo (Open Banking, FAPI) with user_ratelimited
 * (429 from its second sync) and user_revoked (403, consent revoked, from its second sync), and
 * Aviva (legacy) with user_ratelimited. Retention: calls older than the retention are pruned by
 * the worker once the sandbox clock has moved past it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/api.ts';
import { serverWithClient } from '../helpers/fixture.ts';
import { connect, officialClient, sandbox, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.ts';
import { MODELO_ID, providerId } from '../syncs/scenario.ts';

interface CallJson {
  id: string;
  at: string;
  providerId: string;
  connectionId: string | null;
  syncId: string | null;
  journeyId: string | null;
  method: string;
  endpoint: string;
  status: number | null;
  latencyMs: number;
  errorKind: string | null;
  interactionId: string | null;
}
interface Page {
  data: CallJson[];
  links: { self: string; next?: string };
  meta: { limit: number; nextCursor: string | null };
}
interface Bucket {
  hour: string;
  syncs: number;
  successes: number;
  failures: Record<string, number>;
  calls: number;
  callErrors: Record<string, number>;
  p50LatencyMs: number | null;
  p95LatencyMs: number | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Every endpoint is a path template: no query, no ids, nothing but path characters and {placeholders}. */
const TEMPLATE = /^\/[A-Za-z0-9_\-./{}]*$/;
const OB_RESOURCE_TEMPLATES = ['/accounts', '/accounts/{accountId}/balances', '/accounts/{accountId}/transactions', '/account-access-consents', '/account-access-consents/{consentId}'];

async function admin<T>(baseUrl: string, path: string): Promise<{ status: number; body: T }> {
  const res = await call(baseUrl, 'GET', path, { token: ADMIN_TOKEN });
  return { status: res.status, body: res.body as T };
}

async function calls(baseUrl: string, query: Record<string, string>): Promise<CallJson[]> {
  const res = await admin<Page>(baseUrl, `/admin/api/provider-calls?${new URLSearchParams({ limit: '500', ...query }).toString()}`);
  expect(res.status).toBe(200);
  return res.body.data;
}

describe('the provider call log of real journeys and syncs', () => {
  const env = serverWithClient();
  let userId = '';
  const conns = { obLimited: '', obRevoked: '', legacyLimited: '' };
  let aviva = '';

  beforeAll(async () => {
    userId = (await env.mh.registerUser({ clientUserId: 'call-log' })).userId;
    aviva = await providerId(env.mh, 'Aviva');
    conns.obLimited = (await connect(env.mh, userId, MODELO_ID, 'user_ratelimited')).connectionId;
    conns.obRevoked = (await connect(env.mh, userId, MODELO_ID, 'user_revoked')).connectionId;
    conns.legacyLimited = (await connect(env.mh, userId, aviva, 'user_ratelimited')).connectionId;
    // The nightly syncs are each bank's second: 429 for both user_ratelimited, 403 (consent revoked) for user_revoked.
    await sandbox(env.ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT18H' });
    const run = await sandbox(env.ts.baseUrl, 'POST', '/sandbox/scheduler/run');
    expect(run.json.ran).toBe(3);
  });

  it("shows an Open Banking connection's calls newest first: endpoint templates, statuses, latency, and the 429 as rate_limited with its interaction id", async () => {
    const list = await calls(env.ts.baseUrl, { connectionId: conns.obLimited });
    expect(list.length).toBeGreaterThan(3);
    for (const c of list) {
      expect(c).toMatchObject({ providerId: MODELO_ID, connectionId: conns.obLimited });
      expect(c.endpoint).toMatch(TEMPLATE);
      expect(c.latencyMs).toBeGreaterThanOrEqual(0);
      expect(c.syncId).toMatch(UUID);
    }
    const ats = list.map((c) => Date.parse(c.at));
    expect([...ats].sort((a, b) => b - a)).toEqual(ats);
    const resources = list.filter((c) => c.endpoint.includes('account'));
    expect(resources.length).toBeGreaterThan(0);
    for (const c of resources) {
      expect(OB_RESOURCE_TEMPLATES).toContain(c.endpoint);
      expect(c.interactionId).toMatch(UUID);
    }
    // The first sync read accounts, balances and transactions; the nightly one met the 429.
    expect(list.some((c) => c.endpoint === '/accounts/{accountId}/balances' && c.status === 200 && c.errorKind === null)).toBe(true);
    const limited = list.filter((c) => c.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]).toMatchObject({ method: 'GET', endpoint: '/accounts', errorKind: 'rate_limited' });
  });

  it('logs the refusal of a revoked consent as credentials, the kind the sync ended with, and the consent read that explained it', async () => {
    const list = await calls(env.ts.baseUrl, { connectionId: conns.obRevoked });
    const refused = list.find((c) => c.status === 403);
    expect(refused).toMatchObject({ endpoint: '/accounts', errorKind: 'credentials' });
    expect(list.some((c) => c.endpoint === '/account-access-consents/{consentId}' && c.method === 'GET' && c.status === 200 && c.errorKind === null)).toBe(true);
    const syncs = (await env.mh.getConnectionSyncs({ userId, connectionId: conns.obRevoked })).data as unknown as { id: string; fetchStatus: string }[];
    expect(syncs[0]?.fetchStatus).toBe('credentials-error');
    expect(refused?.syncId).toBe(syncs[0]?.id);
  });

  it('records the journeys that made the connections, by journey, with the consent they created', async () => {
    const list = await calls(env.ts.baseUrl, { providerId: MODELO_ID });
    const journeyCalls = list.filter((c) => c.journeyId !== null);
    expect(journeyCalls.length).toBeGreaterThan(0);
    expect(journeyCalls.some((c) => c.method === 'POST' && c.endpoint === '/account-access-consents' && c.status === 201)).toBe(true);
    // openid-client's own calls (discovery, the token endpoint) are recorded too, by their path.
    expect(journeyCalls.some((c) => c.method === 'POST' && /token/.test(c.endpoint) && c.status === 200)).toBe(true);
    for (const c of journeyCalls) expect(c.endpoint).toMatch(TEMPLATE);
    for (const c of journeyCalls) expect(c.syncId).toBeNull();
  });

  it("records a legacy login's one-time-code request as mfa_required, not as refused credentials", async () => {
    const before = new Set((await calls(env.ts.baseUrl, { providerId: aviva })).map((c) => c.id));
    await connect(env.mh, userId, aviva, 'user_mfa');
    const journey = (await calls(env.ts.baseUrl, { providerId: aviva })).filter((c) => !before.has(c.id) && c.journeyId !== null).reverse();
    expect(journey.map((c) => [c.method, c.endpoint, c.status, c.errorKind])).toEqual([
      ['POST', '/login', 401, 'mfa_required'],
      ['POST', '/login/otp', 200, null],
    ]);
    expect(new Set(journey.map((c) => c.journeyId)).size).toBe(1);
  });

  it("shows a legacy provider's 429 as rate_limited on /portfolio, with no interaction id (its protocol has none)", async () => {
    const list = await calls(env.ts.baseUrl, { connectionId: conns.legacyLimited, status: '429' });
    expect(list.length).toBe(1);
    expect(list[0]).toMatchObject({ providerId: aviva, method: 'GET', endpoint: '/portfolio', status: 429, errorKind: 'rate_limited', interactionId: null });
  });

  it('filters by provider, error kind and time, and pages newest first with a cursor, each call once', async () => {
    const all = await calls(env.ts.baseUrl, { providerId: MODELO_ID });
    const seen: CallJson[] = [];
    let next: string | undefined = `/admin/api/provider-calls?providerId=${MODELO_ID}&limit=4`;
    while (next !== undefined) {
      const page: { status: number; body: Page } = await admin<Page>(env.ts.baseUrl, next.replace(env.ts.baseUrl, ''));
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(4);
      seen.push(...page.body.data);
      next = page.body.links.next;
    }
    expect(seen.map((c) => c.id)).toEqual(all.map((c) => c.id));

    const limited = await calls(env.ts.baseUrl, { errorKind: 'rate_limited' });
    expect(new Set(limited.map((c) => c.connectionId))).toEqual(new Set([conns.obLimited, conns.legacyLimited]));
    expect(limited.every((c) => c.errorKind === 'rate_limited')).toBe(true);

    const nightly = limited.map((c) => Date.parse(c.at)).reduce((a, b) => Math.min(a, b));
    const before = await calls(env.ts.baseUrl, { providerId: MODELO_ID, until: new Date(nightly).toISOString() });
    const after = await calls(env.ts.baseUrl, { providerId: MODELO_ID, since: new Date(nightly).toISOString() });
    expect(before.length + after.length).toBe(all.length);
    expect(before.every((c) => Date.parse(c.at) < nightly)).toBe(true);
  });

  it('refuses bad filters and a forged cursor with 400, and callers without the admin token with 401', async () => {
    for (const q of ['status=abc', 'errorKind=broken', 'since=yesterday', 'limit=0', 'cursor=bm90LWEtY3Vyc29y']) {
      const res = await admin<{ code: string; message: string }>(env.ts.baseUrl, `/admin/api/provider-calls?${q}`);
      expect(res.status, q).toBe(400);
      expect(typeof res.body.code).toBe('string');
      expect(typeof res.body.message).toBe('string');
    }
    expect((await call(env.ts.baseUrl, 'GET', '/admin/api/provider-calls')).status).toBe(401);
    expect((await call(env.ts.baseUrl, 'GET', `/admin/api/providers/${MODELO_ID}/health`)).status).toBe(401);
  });

  it("answers a provider's health hour by hour: syncs, successes, failures by kind, calls and latency percentiles", async () => {
    const res = await admin<{ data: Bucket[]; meta: { providerId: string; hours: number } }>(env.ts.baseUrl, `/admin/api/providers/${MODELO_ID}/health?hours=48`);
    expect(res.status).toBe(200);
    expect(res.body.meta).toMatchObject({ providerId: MODELO_ID, hours: 48 });
    expect(res.body.data).toHaveLength(48);
    const sum = (f: (b: Bucket) => number): number => res.body.data.reduce((a, b) => a + f(b), 0);
    expect(sum((b) => b.syncs)).toBe(4);
    expect(sum((b) => b.successes)).toBe(2);
    expect(sum((b) => b.failures.rate_limited ?? 0)).toBe(1);
    expect(sum((b) => b.failures.credentials ?? 0)).toBe(1);
    expect(sum((b) => b.calls)).toBe((await calls(env.ts.baseUrl, { providerId: MODELO_ID })).length);
    const busy = res.body.data.filter((b) => b.calls > 0);
    expect(busy.length).toBeGreaterThan(0);
    for (const b of busy) expect(b.p95LatencyMs).toBeGreaterThanOrEqual(b.p50LatencyMs ?? Number.POSITIVE_INFINITY);
    expect(res.body.data[47]?.hour).toBe(new Date(Math.floor(Date.parse((await sandbox(env.ts.baseUrl, 'GET', '/sandbox/clock')).json.now as string) / 3_600_000) * 3_600_000).toISOString());

    const week = await admin<{ data: Bucket[] }>(env.ts.baseUrl, `/admin/api/providers/${MODELO_ID}/health`);
    expect(week.body.data).toHaveLength(168);
    const unknown = await admin<{ code: string; message: string }>(env.ts.baseUrl, '/admin/api/providers/no-such-provider/health');
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('not_found');
    expect((await admin(env.ts.baseUrl, `/admin/api/providers/${MODELO_ID}/health?hours=721`)).status).toBe(400);
  });

  it('documents both routes in the OpenAPI document, under the admin token', async () => {
    const doc = (await call(env.ts.baseUrl, 'GET', '/docs/json')).body as { paths: Record<string, { get?: { security?: unknown[] } }> };
    for (const p of ['/admin/api/provider-calls', '/admin/api/providers/{providerId}/health']) {
      expect(doc.paths[p]?.get?.security).toEqual([{ admin: [] }]);
    }
  });
});

describe('provider call retention', () => {
  let ts: TestServer;
  let mh: MoneyhubClient;

  beforeAll(async () => {
    ts = await startTestServer({ providerCallRetentionDays: 14 }, { jobs: true, timers: { purgeEveryMs: 100 } });
    mh = (await officialClient(ts.baseUrl, 'client_secret_basic')).mh;
  });
  afterAll(async () => ts?.stop());

  it('prunes calls older than MOORING_PROVIDER_CALL_RETENTION_DAYS of domain time, keeping newer ones', async () => {
    const userId = (await mh.registerUser({ clientUserId: 'retention' })).userId;
    const { connectionId } = await connect(mh, userId, await providerId(mh, 'Aviva'));
    const first = await calls(ts.baseUrl, { connectionId });
    expect(first.length).toBeGreaterThan(0);

    await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'P13D' });
    const run = await sandbox(ts.baseUrl, 'POST', '/sandbox/scheduler/run');
    expect(run.status).toBe(200);
    const kept = await calls(ts.baseUrl, { connectionId });
    expect(kept.map((c) => c.id)).toEqual(expect.arrayContaining(first.map((c) => c.id)));

    // Past 14 days for the first calls only: the worker's purge removes them and nothing newer.
    await sandbox(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'P1DT1H' });
    const newer = kept.filter((c) => !first.some((f) => f.id === c.id)).map((c) => c.id);
    let left: CallJson[] = kept;
    for (let i = 0; i < 200 && left.some((c) => first.some((f) => f.id === c.id)); i += 1) {
      await new Promise((r) => setTimeout(r, 50));
      left = await calls(ts.baseUrl, { connectionId });
    }
    expect(left.filter((c) => first.some((f) => f.id === c.id))).toEqual([]);
    expect(left.map((c) => c.id)).toEqual(expect.arrayContaining(newer));
  });
});

describe('a database failure while writing the call log', () => {
  const env = serverWithClient();

  it('fails no sync and blames no provider; the rows are written once the database takes them again', async () => {
    const userId = (await env.mh.registerUser({ clientUserId: 'call-log-down' })).userId;
    const db = env.ts.testDb.db;
    // The call log cannot be written while its table is away (what a full disk or a lost permission looks like to the writer).
    await db.query('alter table provider_calls rename to provider_calls_away');
    let connectionId = '';
    try {
      connectionId = (await connect(env.mh, userId, MODELO_ID)).connectionId;
      await env.ts.server.callLog.flush();
    } finally {
      await db.query('alter table provider_calls_away rename to provider_calls');
    }
    const syncs = (await env.mh.getConnectionSyncs({ userId, connectionId })).data as unknown as { fetchStatus: string }[];
    expect(syncs.map((s) => s.fetchStatus)).toEqual(['success']);
    const conn = (await env.mh.getUserConnections({ userId })).data.find((c) => c.id === connectionId) as unknown as { status: string; error: string | null };
    expect(conn).toMatchObject({ status: 'ok', error: null });

    const list = await calls(env.ts.baseUrl, { connectionId });
    expect(list.some((c) => c.endpoint === '/accounts' && c.status === 200)).toBe(true);
    const health = await admin<{ data: Bucket[] }>(env.ts.baseUrl, `/admin/api/providers/${MODELO_ID}/health?hours=2`);
    expect(health.body.data.reduce((a, b) => a + b.syncs, 0)).toBe(1);
  });
});
