/**
 * Webhook registration (admin API), the client's event log (GET /webhook-events) and replay, with a
 * real receiver on 127.0.0.1 (sandbox mode allows loopback receivers, nothing else private).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { accessToken, call, connectBank, MODELO_ID, type ApiClient } from '../helpers/api.ts';
import { signatureProblem, startReceiver, type Receiver, type WebhookBody } from '../helpers/webhook-receiver.ts';
import {
  adminCall, allEvents, attendedSync, eventsPage, replay, runScheduler, webhookClient, type EventJson,
} from '../helpers/webhooks.ts';

describe('webhook registration, event log and replay', () => {
  let ts: TestServer;
  let client: ApiClient;
  let other: ApiClient;
  let receiver: Receiver;
  let secret: string;
  let userId: string;
  let connectionId: string;

  beforeAll(async () => {
    ts = await startTestServer();
    [client, other] = await Promise.all([webhookClient(ts.baseUrl), webhookClient(ts.baseUrl)]);
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    await ts?.stop();
  });

  const hookPath = (clientId: string): string => `/admin/clients/${encodeURIComponent(clientId)}/webhook`;

  it('registers a URL with the admin token and answers it with a signing secret', async () => {
    const res = await adminCall(ts.baseUrl, 'PUT', hookPath(client.clientId), { url: receiver.url });
    expect(res.status).toBe(200);
    const body = res.body as { url: string; secret: string };
    expect(body.url).toBe(receiver.url);
    expect(typeof body.secret).toBe('string');
    expect(body.secret.length).toBeGreaterThanOrEqual(16);
    secret = body.secret;
  });

  it('keeps the secret on a second PUT unless rotateSecret is true', async () => {
    const again = await adminCall(ts.baseUrl, 'PUT', hookPath(client.clientId), { url: `${receiver.url}?v=2` });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ url: `${receiver.url}?v=2`, secret });

    const rotated = await adminCall(ts.baseUrl, 'PUT', hookPath(client.clientId), { url: receiver.url, rotateSecret: true });
    expect(rotated.status).toBe(200);
    const newSecret = (rotated.body as { secret: string }).secret;
    expect(newSecret).not.toBe(secret);
    secret = newSecret;

    const kept = await adminCall(ts.baseUrl, 'PUT', hookPath(client.clientId), { url: receiver.url, rotateSecret: false });
    expect((kept.body as { secret: string }).secret).toBe(secret);
  });

  /** The webhook URL the operator's overview (GET /admin/api/overview) shows for a client. */
  const registeredUrl = async (clientId: string): Promise<string | null | undefined> => {
    const overview = await adminCall(ts.baseUrl, 'GET', '/admin/api/overview');
    expect(overview.status).toBe(200);
    return (overview.body as { clients: { clientId: string; webhookUrl: string | null }[] }).clients.find((c) => c.clientId === clientId)?.webhookUrl;
  };

  it('takes https to a public address, refuses http to one (400, nothing stored), and takes http to a loopback receiver in sandbox mode', async () => {
    const https = await adminCall(ts.baseUrl, 'PUT', hookPath(other.clientId), { url: 'https://8.8.8.8/mooring-events' });
    expect(https.status).toBe(200);
    expect((https.body as { url: string }).url).toBe('https://8.8.8.8/mooring-events');
    for (const url of ['http://8.8.8.8/mooring-events', 'http://[2001:4860:4860::8888]/hook']) {
      const plain = await adminCall(ts.baseUrl, 'PUT', hookPath(other.clientId), { url });
      expect(plain.status, url).toBe(400);
      expect(plain.body, url).toMatchObject({ code: 'invalid_webhook_url', details: { field: 'url' } });
      expect((plain.body as { message: string }).message, url).toMatch(/https/);
    }
    // The refused PUTs changed nothing: the operator's overview still shows the https URL registered for the client.
    expect(await registeredUrl(other.clientId)).toBe('https://8.8.8.8/mooring-events');
    expect(receiver.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    expect((await adminCall(ts.baseUrl, 'PUT', hookPath(other.clientId), { url: receiver.url })).status).toBe(200);
    expect((await adminCall(ts.baseUrl, 'DELETE', hookPath(other.clientId))).status).toBe(204);
  });

  it('refuses registration without (or with a wrong) admin token: 401', async () => {
    const none = await adminCall(ts.baseUrl, 'PUT', hookPath(client.clientId), { url: receiver.url }, null);
    expect(none.status).toBe(401);
    const wrong = await adminCall(ts.baseUrl, 'PUT', hookPath(client.clientId), { url: receiver.url }, 'not-the-admin-token');
    expect(wrong.status).toBe(401);
    const del = await adminCall(ts.baseUrl, 'DELETE', hookPath(client.clientId), undefined, null);
    expect(del.status).toBe(401);
    // A client's own API token is not the admin token either.
    const own = await accessToken(ts.baseUrl, client, 'webhooks:write');
    expect((await adminCall(ts.baseUrl, 'PUT', hookPath(client.clientId), { url: receiver.url }, own)).status).toBe(401);
  });

  it.each(['ftp://example.com/hook', 'file:///etc/passwd', 'javascript:alert(1)', 'not a url', 'mailto:ops@example.com'])(
    'refuses the URL %s: 400 invalid_webhook_url',
    async (url) => {
      const res = await adminCall(ts.baseUrl, 'PUT', hookPath(other.clientId), { url });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'invalid_webhook_url' });
    },
  );

  it.each(['http://10.1.2.3/hook', 'http://192.168.0.1/', 'https://172.16.5.4/x', 'http://169.254.169.254/latest/meta-data', 'http://[fd00::1]/'])(
    'refuses the private address %s (sandbox allows loopback only): 400',
    async (url) => {
      const res = await adminCall(ts.baseUrl, 'PUT', hookPath(other.clientId), { url });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'invalid_webhook_url' });
    },
  );

  it('refused registrations change nothing', async () => {
    // `other` never got a URL: replaying anything of its own is impossible and DELETE finds nothing.
    expect((await adminCall(ts.baseUrl, 'DELETE', hookPath(other.clientId))).status).toBe(404);
  });

  it('answers 404 for an unknown client', async () => {
    const res = await adminCall(ts.baseUrl, 'PUT', hookPath('no-such-client'), { url: receiver.url });
    expect(res.status).toBe(404);
    expect((await adminCall(ts.baseUrl, 'DELETE', hookPath('no-such-client'))).status).toBe(404);
  });

  it('delivers signed events for a connection: {id, eventType, userId, payload} with Mooring-Event-Id', async () => {
    ({ userId } = await client.mh.registerUser({ clientUserId: 'hooked' }));
    connectionId = await connectBank(client, userId, MODELO_ID, 'user_ok');
    await runScheduler(ts.baseUrl);
    const events = await allEvents(ts.baseUrl, client);
    expect(events.map((e) => e.eventType).sort()).toEqual(['newTransactions', 'syncCompleted']);
    const byId = receiver.successesById();
    for (const e of events) {
      const got = byId.get(e.id) ?? [];
      expect(got, `deliveries of ${e.eventType}`).toHaveLength(1);
      const r = got[0];
      if (r === undefined) continue;
      expect(signatureProblem(secret, r.raw, r.signature)).toBeNull();
      expect(r.contentType).toMatch(/^application\/json/);
      const body = JSON.parse(r.raw) as WebhookBody;
      expect(Object.keys(body).sort()).toEqual(['eventType', 'id', 'payload', 'userId']);
      expect(body).toEqual({ id: e.id, eventType: e.eventType, userId, payload: e.payload });
      expect(r.eventId).toBe(body.id);
      expect(e.deliveries).toEqual([expect.objectContaining({ status: 'delivered', responseCode: 200 })]);
    }
  });

  it('lists the event log with limit, offset and an eventType filter', async () => {
    // A few more events: each attended sync is one syncCompleted.
    for (let i = 0; i < 3; i += 1) expect(await attendedSync(client, userId, connectionId)).toBe('ok');
    const all = await allEvents(ts.baseUrl, client);
    expect(all).toHaveLength(5);
    for (const e of all) {
      expect(e).toMatchObject({ userId, payload: expect.objectContaining({ connectionId }) });
      expect(Number.isNaN(Date.parse(e.createdAt))).toBe(false);
      expect(Array.isArray(e.deliveries)).toBe(true);
    }
    // Newest first.
    const times = all.map((e) => Date.parse(e.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);

    const first = await eventsPage(ts.baseUrl, client, { limit: 2 });
    expect(first.data.map((e) => e.id)).toEqual(all.slice(0, 2).map((e) => e.id));
    expect(first.meta.total).toBe(5);
    expect(first.links.next).toBeDefined();
    const second = await eventsPage(ts.baseUrl, client, { limit: 2, offset: 2 });
    expect(second.data.map((e) => e.id)).toEqual(all.slice(2, 4).map((e) => e.id));
    expect(second.links.prev).toBeDefined();
    const last = await eventsPage(ts.baseUrl, client, { limit: 2, offset: 4 });
    expect(last.data.map((e) => e.id)).toEqual(all.slice(4).map((e) => e.id));
    expect(last.links.next).toBeUndefined();

    const syncs = await eventsPage(ts.baseUrl, client, { eventType: 'syncCompleted' });
    expect(syncs.data).toHaveLength(4);
    expect(syncs.data.every((e) => e.eventType === 'syncCompleted')).toBe(true);
    const newTx = await eventsPage(ts.baseUrl, client, { eventType: 'newTransactions', limit: 10 });
    expect(newTx.data.map((e) => e.eventType)).toEqual(['newTransactions']);
    expect((await eventsPage(ts.baseUrl, client, { eventType: 'connectionExpired' })).data).toEqual([]);

    const token = await accessToken(ts.baseUrl, client, 'webhooks:read');
    const bad = await call(ts.baseUrl, 'GET', '/webhook-events?eventType=somethingElse', { token });
    expect(bad.status).toBe(400);
    const badLimit = await call(ts.baseUrl, 'GET', '/webhook-events?limit=0', { token });
    expect(badLimit.status).toBe(400);
  });

  it("shows another client none of the events, and needs webhooks:read", async () => {
    const theirs = await eventsPage(ts.baseUrl, other);
    expect(theirs.data).toEqual([]);
    expect(theirs.meta.total ?? 0).toBe(0);

    const noScope = await accessToken(ts.baseUrl, client, 'user:read');
    expect((await call(ts.baseUrl, 'GET', '/webhook-events', { token: noScope })).status).toBe(403);
    const writeOnly = await accessToken(ts.baseUrl, client, 'webhooks:write');
    expect((await call(ts.baseUrl, 'GET', '/webhook-events', { token: writeOnly })).status).toBe(403);
    expect((await call(ts.baseUrl, 'GET', '/webhook-events')).status).toBe(401);
    expect((await call(ts.baseUrl, 'GET', '/webhook-events', { token: 'garbage' })).status).toBe(401);
  });

  it('replays an event: 202, and the receiver gets the same event id again, signed', async () => {
    await runScheduler(ts.baseUrl); // deliver the syncCompleted events of the previous test
    const target = (await eventsPage(ts.baseUrl, client, { eventType: 'newTransactions' })).data[0] as EventJson;
    const before = receiver.successesById().get(target.id)?.length ?? 0;
    expect(before).toBe(1);

    const res = await replay(ts.baseUrl, client, target.id);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ id: target.id });
    await runScheduler(ts.baseUrl);

    const got = receiver.successesById().get(target.id) ?? [];
    expect(got).toHaveLength(2);
    const [a, b] = got;
    expect(b?.raw).toBe(a?.raw);
    expect(b?.eventId).toBe(target.id);
    expect(signatureProblem(secret, b?.raw ?? '', b?.signature ?? null)).toBeNull();
    const after = (await eventsPage(ts.baseUrl, client, { eventType: 'newTransactions' })).data[0] as EventJson;
    expect(after.id).toBe(target.id);
    expect(after.deliveries.filter((d) => d.status === 'delivered')).toHaveLength(2);
    // Only that event was sent again.
    const counts = [...receiver.successesById()].filter(([id]) => id !== target.id).map(([, r]) => r.length);
    expect(counts.every((n) => n === 1)).toBe(true);
  });

  it('refuses replays of unknown events and of other clients\' events (404), and without webhooks:write (403)', async () => {
    expect((await replay(ts.baseUrl, client, randomUUID())).status).toBe(404);
    expect((await replay(ts.baseUrl, client, 'not-an-event-id')).status).toBe(404);
    const mine = (await eventsPage(ts.baseUrl, client, { limit: 1 })).data[0] as EventJson;
    const stolen = await replay(ts.baseUrl, other, mine.id);
    expect(stolen.status).toBe(404);
    expect((await replay(ts.baseUrl, client, mine.id, 'webhooks:read')).status).toBe(403);
    const countBefore = receiver.received.length;
    await runScheduler(ts.baseUrl);
    expect(receiver.received.length).toBe(countBefore);
  });

  it('DELETE stops deliveries, including retries of events that were still failing', async () => {
    receiver.behaviour.status = 500;
    expect(await attendedSync(client, userId, connectionId)).toBe('ok');
    await runScheduler(ts.baseUrl);
    const failing = (await eventsPage(ts.baseUrl, client, { limit: 1 })).data[0] as EventJson;
    expect(failing.deliveries).toEqual([expect.objectContaining({ status: 'failed', responseCode: 500 })]);

    const del = await adminCall(ts.baseUrl, 'DELETE', hookPath(client.clientId));
    expect(del.status).toBe(204);
    receiver.behaviour.status = 200;
    const seen = receiver.received.length;
    expect(await attendedSync(client, userId, connectionId)).toBe('ok');
    for (let i = 0; i < 3; i += 1) {
      await adminCall(ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT10M' });
      await runScheduler(ts.baseUrl);
    }
    expect(receiver.received.length).toBe(seen);
    // The events are still logged; the new one was never attempted.
    const latest = (await eventsPage(ts.baseUrl, client, { limit: 1 })).data[0] as EventJson;
    expect(latest.eventType).toBe('syncCompleted');
    expect(latest.deliveries).toEqual([]);
    const failed = (await allEvents(ts.baseUrl, client)).find((e) => e.id === failing.id);
    expect(failed?.deliveries).toHaveLength(1);
    // Nothing to replay to: no URL.
    expect([404, 409]).toContain((await replay(ts.baseUrl, client, failing.id)).status);
    expect((await adminCall(ts.baseUrl, 'DELETE', hookPath(client.clientId))).status).toBe(404);
  });
});
