/**
 * What each delivery attempt records (SPEC section 9): `delivered` for a 2xx within the time-out,
 * otherwise `failed` with the response code (or null) and an `error` saying why in words — no
 * answer within the time-out, a redirect (never followed), another status, a refused connection.
 * The server's delivery time-out is shortened (an option of createServer) so the test is quick.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBank } from '../helpers/api.ts';
import { freePort, startTestServer, type TestServer } from '../helpers/server.ts';
import { createReceiver, startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';
import { allEvents, runScheduler, setWebhook, webhookClient, type EventJson } from '../helpers/webhooks.ts';

const DELIVERY_TIMEOUT_MS = 1_000;

describe('delivery attempts: status, response code and error in words', () => {
  let ts: TestServer;
  const receivers: Receiver[] = [];
  let redirector: http.Server | null = null;

  beforeAll(async () => {
    ts = await startTestServer({}, { timers: { webhookDeliveryTimeoutMs: DELIVERY_TIMEOUT_MS } });
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    redirector?.closeAllConnections();
    await new Promise((resolve) => (redirector === null ? resolve(undefined) : redirector.close(resolve)));
    await ts?.stop();
  });

  /** A client whose webhook URL is `url`, with one connected bank (so it has events), after one scheduler run. */
  async function eventsDeliveredTo(url: string, label: string): Promise<EventJson[]> {
    const client = await webhookClient(ts.baseUrl);
    await setWebhook(ts.baseUrl, client.clientId, url);
    const { userId } = await client.mh.registerUser({ clientUserId: label });
    await connectBank(client, userId);
    await runScheduler(ts.baseUrl);
    const events = await allEvents(ts.baseUrl, client);
    expect(events.length).toBeGreaterThan(0);
    return events;
  }

  it('no answer within the time-out: failed, no code, "no answer within …"', async () => {
    const r = await startReceiver();
    receivers.push(r);
    r.behaviour.hang = true;
    for (const e of await eventsDeliveredTo(r.url, 'hang')) {
      expect(e.deliveries).toEqual([{ at: expect.any(String), status: 'failed', responseCode: null, error: 'no answer within 1 s' }]);
    }
  });

  it('a redirect: failed with its code, and never followed', async () => {
    const target = await startReceiver();
    receivers.push(target);
    const port = await freePort();
    let hits = 0;
    redirector = http.createServer((req, res) => {
      hits += 1;
      req.resume();
      res.writeHead(307, { location: target.url }).end();
    });
    const server = redirector;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    const events = await eventsDeliveredTo(`http://127.0.0.1:${port}/hook`, 'redirect');
    for (const e of events) {
      expect(e.deliveries).toHaveLength(1);
      expect(e.deliveries[0]).toMatchObject({ status: 'failed', responseCode: 307 });
      expect(e.deliveries[0]?.error).toMatch(/redirect.*never followed/);
    }
    expect(hits).toBe(events.length);
    expect(target.received).toEqual([]);
  });

  it('a 2xx answer is delivered with no error; another status or a refused connection failed, with the reason', async () => {
    const r = await startReceiver();
    receivers.push(r);
    for (const e of await eventsDeliveredTo(r.url, 'ok')) expect(e.deliveries).toEqual([{ at: expect.any(String), status: 'delivered', responseCode: 200, error: null }]);
    const failing = await startReceiver();
    receivers.push(failing);
    failing.behaviour.status = 503;
    for (const e of await eventsDeliveredTo(failing.url, 'unavailable')) {
      expect(e.deliveries).toEqual([{ at: expect.any(String), status: 'failed', responseCode: 503, error: 'the receiver answered 503' }]);
    }
    const down = await createReceiver();
    for (const e of await eventsDeliveredTo(down.url, 'refused')) {
      expect(e.deliveries).toEqual([{ at: expect.any(String), status: 'failed', responseCode: null, error: expect.stringMatching(/could not connect.*refused/) }]);
    }
  });
});
