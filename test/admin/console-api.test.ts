/**
 * The operator console's admin API: search across every client's users, connections and API
 * clients; one connection as its client sees it with a timeline of its journeys, syncs, status
 * changes, provider calls and webhook events (with every delivery attempt), paged by cursor; a
 * sync now within the unattended budget; a webhook event delivered again. All data comes from real
 * journeys and syncs against the sandbox banks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_API_SCOPES, apiClient, connectBank, MODELO_ID, type ApiClient, type Res } from '../helpers/api.ts';
import { Browser } from '../helpers/browser.ts';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.ts';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';
import { adminCall, runScheduler, setBehaviour, setWebhook } from '../helpers/webhooks.ts';

interface Entry { at: string; kind: string; id: string; summary: string; detail: Record<string, unknown> }
interface Detail {
  data: {
    connection: { id: string; status: string; error: string | null; remediation: { action: string; reason: string }; syncBudget: { remaining: number } };
    user: { userId: string; clientUserId?: string; clientId: string };
    client: { clientId: string; name: string | null };
    provider: { id: string; name: string };
    timeline: Entry[];
  };
  links: { self: string; next?: string };
}
interface Search {
  data: {
    users: { userId: string; clientId: string; clientUserId: string | null; match: string }[];
    connections: { connectionId: string; userId: string; providerName: string; match: string }[];
    clients: { clientId: string; name: string | null; match: string }[];
  };
}

describe('the console admin API', () => {
  let ts: TestServer;
  let receiver: Receiver;
  let harbour: ApiClient;
  let other: ApiClient;
  let revokedUser: string;
  let revokedConnection: string;
  let otherUser: string;

  const get = (path: string, token: string | null = ADMIN_TOKEN): Promise<Res> => adminCall(ts.baseUrl, 'GET', path, undefined, token);
  const post = (path: string, token: string | null = ADMIN_TOKEN): Promise<Res> => adminCall(ts.baseUrl, 'POST', path, undefined, token);
  const detail = async (connectionId: string, query = ''): Promise<Detail> => {
    const res = await get(`/admin/api/connections/${encodeURIComponent(connectionId)}${query}`);
    expect(res.status, res.text).toBe(200);
    return res.body as Detail;
  };
  const search = async (q: string): Promise<Search['data']> => {
    const res = await get(`/admin/api/search?${new URLSearchParams({ q }).toString()}`);
    expect(res.status, res.text).toBe(200);
    return (res.body as Search).data;
  };

  beforeAll(async () => {
    ts = await startTestServer();
    receiver = await startReceiver();
    harbour = await apiClient(ts.baseUrl, { scope: ALL_API_SCOPES, client_name: 'Harbour Savings' });
    other = await apiClient(ts.baseUrl, { scope: ALL_API_SCOPES, client_name: 'Other Lending' });
    await setWebhook(ts.baseUrl, harbour.clientId, receiver.url);

    revokedUser = (await harbour.mh.registerUser({ clientUserId: 'customer-4711' })).userId;
    revokedConnection = await connectBank(harbour, revokedUser, MODELO_ID, 'user_revoked');
    otherUser = (await other.mh.registerUser({ clientUserId: 'customer-4711-b' })).userId;
    await connectBank(other, otherUser, MODELO_ID, 'user_ok');
  });
  afterAll(async () => {
    await receiver?.close();
    await ts?.stop();
  });

  it('answers 401 without the admin token, on every console endpoint', async () => {
    for (const res of [
      await get('/admin/api/search?q=customer', null),
      await get(`/admin/api/connections/${encodeURIComponent(revokedConnection)}`, null),
      await post(`/admin/api/connections/${encodeURIComponent(revokedConnection)}/sync`, null),
      await post('/admin/api/webhook-events/00000000-0000-4000-8000-000000000000/replay', null),
      await get('/admin/api/search?q=customer', 'not-the-admin-token-but-long-enough-000'),
    ]) {
      expect(res.status).toBe(401);
      expect((res.body as { code: string }).code).toBe('unauthorized');
    }
  });

  it('finds users of every client by clientUserId (exact first, then by prefix), by user id, connections by id and clients by id and name', async () => {
    const exact = await search('customer-4711');
    expect(exact.users.map((u) => [u.userId, u.match])).toEqual([[revokedUser, 'exact'], [otherUser, 'prefix']]);
    expect(exact.users[1]?.clientId).toBe(other.clientId);
    // Each found user's connections come along, so the operator is one click from the connection.
    expect(exact.connections.map((c) => c.userId).sort()).toEqual([revokedUser, otherUser].sort());
    expect(exact.connections.find((c) => c.userId === revokedUser)).toMatchObject({ connectionId: revokedConnection, providerName: 'Modelo Open Banking Mock', match: 'via_user' });

    expect((await search('customer-47')).users.map((u) => u.match)).toEqual(['prefix', 'prefix']);
    expect((await search(revokedUser)).users).toEqual([expect.objectContaining({ userId: revokedUser, match: 'exact', clientUserId: 'customer-4711' })]);
    const byConnection = await search(revokedConnection);
    expect(byConnection.connections[0]).toMatchObject({ connectionId: revokedConnection, userId: revokedUser, match: 'exact' });
    expect((await search('harbour')).clients).toEqual([{ clientId: harbour.clientId, name: 'Harbour Savings', match: 'prefix' }]);
    expect((await search(other.clientId)).clients).toEqual([{ clientId: other.clientId, name: 'Other Lending', match: 'exact' }]);
    expect(await search('nobody-has-this-name')).toEqual({ users: [], connections: [], clients: [] });
  });

  it('refuses bad input with 4xx {code, message, details} and changes nothing', async () => {
    const cases: [Res, number, string][] = [
      [await get('/admin/api/search?q='), 400, 'invalid_query'],
      [await get('/admin/api/search?q=%20%20'), 400, 'invalid_query'],
      [await get(`/admin/api/search?q=${'x'.repeat(201)}`), 400, 'invalid_request'],
      [await get('/admin/api/search'), 400, 'invalid_request'],
      [await get(`/admin/api/connections/${encodeURIComponent(revokedConnection)}?kind=sync,gossip`), 400, 'invalid_kind'],
      [await get(`/admin/api/connections/${encodeURIComponent(revokedConnection)}?cursor=not-a-cursor`), 400, 'invalid_cursor'],
      [await get(`/admin/api/connections/${encodeURIComponent(revokedConnection)}?limit=0`), 400, 'invalid_request'],
      [await get('/admin/api/connections/not-a-connection'), 404, 'not_found'],
      [await get(`/admin/api/connections/${MODELO_ID}:00000000-0000-4000-8000-000000000000`), 404, 'not_found'],
      [await post(`/admin/api/connections/${MODELO_ID}:00000000-0000-4000-8000-000000000000/sync`), 404, 'not_found'],
      [await post('/admin/api/webhook-events/not-an-event/replay'), 404, 'not_found'],
      [await post('/admin/api/webhook-events/00000000-0000-4000-8000-000000000000/replay'), 404, 'not_found'],
    ];
    for (const [res, status, code] of cases) {
      expect(res.status, res.text).toBe(status);
      const body = res.body as { code: string; message: string };
      expect(body.code, res.text).toBe(code);
      expect(typeof body.message).toBe('string');
    }
    const d = await detail(revokedConnection);
    expect(d.data.timeline.filter((e) => e.kind === 'sync')).toHaveLength(1);
  });

  it("shows the connection as its client sees it, and a timeline of the journey, the failed sync and its provider call, the status change and the webhooks", async () => {
    const before = await detail(revokedConnection);
    expect(before.data.connection.status).toBe('ok');
    const sync = await post(`/admin/api/connections/${encodeURIComponent(revokedConnection)}/sync`);
    expect(sync.status, sync.text).toBe(200);
    const synced = (sync.body as { data: { status: string; sync: { fetchStatus: string; action: string; errorDetail: string | null } } }).data;
    expect(synced).toMatchObject({ status: 'error', sync: { fetchStatus: 'credentials-error', action: 'auto-update' } });
    await runScheduler(ts.baseUrl);

    const d = await detail(revokedConnection);
    const asClient = await harbour.mh.getUserConnections({ userId: revokedUser });
    expect(d.data.connection).toEqual(asClient.data.find((c) => c.id === revokedConnection));
    expect(d.data.connection).toMatchObject({ status: 'error', error: 'credentials_error', remediation: { action: 'reauth' } });
    expect(d.data.user).toMatchObject({ userId: revokedUser, clientUserId: 'customer-4711', clientId: harbour.clientId });
    expect(d.data.client).toEqual({ clientId: harbour.clientId, name: 'Harbour Savings' });
    expect(d.data.provider).toMatchObject({ id: MODELO_ID, name: 'Modelo Open Banking Mock' });

    const t = d.data.timeline;
    const times = t.map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    const kinds = new Set(t.map((e) => e.kind));
    expect([...kinds].sort()).toEqual(['journey', 'provider_call', 'status_change', 'sync', 'webhook_event']);

    expect(t.find((e) => e.kind === 'journey')).toMatchObject({ summary: 'Connect journey completed', detail: { journeyKind: 'connect', outcome: 'completed' } });
    const syncs = t.filter((e) => e.kind === 'sync');
    expect(syncs.map((e) => e.detail.fetchStatus)).toEqual(['credentials-error', 'success']);
    expect(syncs[0]?.detail.errorDetail).toBe(synced.sync.errorDetail);
    expect(syncs[0]?.summary).toContain('credentials-error');

    const changes = t.filter((e) => e.kind === 'status_change');
    expect(changes[0]).toMatchObject({ summary: 'Status ok → error (credentials_error)', detail: { from: { status: 'ok' }, to: { status: 'error', error: 'credentials_error' }, remediationAction: 'reauth' } });

    // The provider call that failed, tied to the failed sync.
    const failedSyncId = syncs[0]?.id;
    const calls = t.filter((e) => e.kind === 'provider_call' && e.detail.syncId === failedSyncId);
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.some((c) => c.detail.errorKind !== null && typeof c.detail.status === 'number' && (c.detail.status as number) >= 400)).toBe(true);
    expect(calls.every((c) => typeof c.detail.endpoint === 'string' && !(c.detail.endpoint as string).includes(revokedConnection))).toBe(true);

    const hooks = t.filter((e) => e.kind === 'webhook_event');
    const changed = hooks.find((e) => e.detail.eventType === 'connectionStatusChanged');
    expect(changed?.detail.deliveries).toEqual([expect.objectContaining({ status: 'delivered', responseCode: 200 })]);
    expect(hooks.filter((e) => e.detail.eventType === 'syncCompleted')).toHaveLength(2);

    // The overview counts it among the connections needing attention.
    const overview = (await get('/admin/api/overview')).body as { attention: Record<string, unknown>[] };
    expect(overview.attention).toEqual([{
      state: 'error:credentials_error:', status: 'error', error: 'credentials_error', extendedStatus: null,
      providerId: MODELO_ID, providerName: 'Modelo Open Banking Mock', connections: 1,
    }]);

    const onlySyncs = await detail(revokedConnection, '?kind=sync');
    expect(onlySyncs.data.timeline.map((e) => e.id)).toEqual(syncs.map((e) => e.id));
  });

  it('pages the timeline by cursor: every entry once, newest first, the same as one long page', async () => {
    const whole = (await detail(revokedConnection, '?limit=200')).data.timeline;
    expect(whole.length).toBeGreaterThan(6);
    const paged: Entry[] = [];
    let next: string | undefined = `${ts.baseUrl}/admin/api/connections/${encodeURIComponent(revokedConnection)}?limit=3`;
    for (let pages = 0; next !== undefined && pages < 50; pages += 1) {
      const res = await get(next.slice(ts.baseUrl.length));
      const body = res.body as Detail;
      expect(body.data.timeline.length).toBeLessThanOrEqual(3);
      paged.push(...body.data.timeline);
      next = body.links.next;
    }
    expect(next).toBeUndefined();
    expect(paged.map((e) => `${e.kind}:${e.id}`)).toEqual(whole.map((e) => `${e.kind}:${e.id}`));
  });

  it('replays a webhook event: a new delivery attempt of the same event id is recorded', async () => {
    const hooks = (await detail(revokedConnection, '?kind=webhook_event')).data.timeline;
    const event = hooks.find((e) => e.detail.eventType === 'connectionStatusChanged');
    if (event === undefined) throw new Error('no connectionStatusChanged event');
    const receivedBefore = receiver.received.filter((r) => r.eventId === event.id).length;
    const res = await post(`/admin/api/webhook-events/${event.id}/replay`);
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ id: event.id, status: 'queued' });
    await runScheduler(ts.baseUrl);
    const after = (await detail(revokedConnection, '?kind=webhook_event')).data.timeline.find((e) => e.id === event.id);
    expect((after?.detail.deliveries as unknown[]).length).toBe((event.detail.deliveries as unknown[]).length + 1);
    expect(receiver.received.filter((r) => r.eventId === event.id).length).toBe(receivedBefore + 1);
  });

  it('syncs within the unattended budget and answers 429 with Retry-After beyond it', async () => {
    const userId = (await harbour.mh.registerUser({ clientUserId: 'budget-user' })).userId;
    const connectionId = await connectBank(harbour, userId, MODELO_ID, 'user_ok');
    const path = `/admin/api/connections/${encodeURIComponent(connectionId)}/sync`;
    const budget = (await detail(connectionId)).data.connection.syncBudget.remaining;
    expect(budget).toBeGreaterThan(0);
    for (let i = 0; i < budget; i += 1) {
      const res = await post(path);
      expect(res.status, res.text).toBe(200);
      expect((res.body as { data: { status: string } }).data.status).toBe('ok');
    }
    const over = await post(path);
    expect(over.status, over.text).toBe(429);
    expect((over.body as { code: string }).code).toBe('sync_budget_exhausted');
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    const syncs = (await detail(connectionId, '?kind=sync')).data.timeline;
    expect(syncs).toHaveLength(budget + 1);
  });

  it('answers 429 with Retry-After while the provider rate-limits the connection, without calling it', async () => {
    const userId = (await harbour.mh.registerUser({ clientUserId: 'limited-user' })).userId;
    const connectionId = await connectBank(harbour, userId, MODELO_ID, 'user_ok');
    await setBehaviour(ts.baseUrl, connectionId, 'user_ratelimited');
    const path = `/admin/api/connections/${encodeURIComponent(connectionId)}/sync`;
    const first = await post(path);
    expect(first.status, first.text).toBe(200);
    expect((first.body as { data: { sync: { fetchStatus: string } } }).data.sync.fetchStatus).toBe('rate-limited');
    const callsBefore = (await detail(connectionId, '?kind=provider_call')).data.timeline.length;
    const second = await post(path);
    expect(second.status, second.text).toBe(429);
    expect((second.body as { code: string }).code).toBe('provider_rate_limited');
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await detail(connectionId, '?kind=provider_call')).data.timeline.length).toBe(callsBefore);
  });

  it('escapes what users and clients typed on the console pages', async () => {
    const hostile = `<img src=x onerror=alert(1)>"'&`;
    const userId = (await harbour.mh.registerUser({ clientUserId: hostile })).userId;
    const browser = new Browser();
    await browser.submit(await browser.follow(`${ts.baseUrl}/admin`), { token: ADMIN_TOKEN });
    const page = await browser.follow(`${ts.baseUrl}/admin/search?${new URLSearchParams({ q: hostile }).toString()}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain(userId);
    expect(page.html).toContain('&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;');
    expect(page.html).not.toContain('<img');
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${ts.baseUrl}/docs/json`)).json()) as { paths: Record<string, unknown> };
    for (const p of ['/admin/api/search', '/admin/api/connections/{connectionId}', '/admin/api/connections/{connectionId}/sync', '/admin/api/webhook-events/{eventId}/replay']) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
  });
});

describe('the console timeline after journeys are purged', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({}, { jobs: true, timers: { purgeEveryMs: 100 } });
  });
  afterAll(async () => ts?.stop());

  it("keeps a connection's connect journey (kind and outcome) once the journey itself is purged a day later", async () => {
    const client = await apiClient(ts.baseUrl, { scope: ALL_API_SCOPES });
    const userId = (await client.mh.registerUser({ clientUserId: 'purged-journey' })).userId;
    const connectionId = await connectBank(client, userId, MODELO_ID, 'user_ok');
    const journeys = async (): Promise<Entry[]> =>
      ((await adminCall(ts.baseUrl, 'GET', `/admin/api/connections/${encodeURIComponent(connectionId)}?kind=journey`)).body as Detail).data.timeline;
    const before = await journeys();
    expect(before).toEqual([expect.objectContaining({ kind: 'journey', summary: 'Connect journey completed' })]);

    const res = await adminCall(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'P2D' });
    expect(res.status).toBe(200);
    const live = async (): Promise<number> => Number((await ts.server.db.query<{ n: string }>('select count(*) as n from journeys')).rows[0]?.n);
    for (let i = 0; i < 200 && (await live()) > 0; i += 1) await new Promise((r) => setTimeout(r, 50));
    expect(await live()).toBe(0);
    expect(await journeys()).toEqual(before);
  });
});
