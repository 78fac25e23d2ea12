/**
 * Deliveries to different clients are independent (SPEC section 9): in a server whose worker
 * delivers continuously, a client whose receiver never answers holds only its own delivery slots.
 * Another client's events are delivered, and recorded, while the first client's attempts are still
 * waiting for an answer. The proof is by order of events, not by elapsed time: the hanging
 * attempts cannot end before the (long, injected) delivery time-out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBank, type ApiClient } from '../helpers/api.ts';
import { waitUntil } from '../helpers/processes.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';
import { allEvents, setWebhook, webhookClient } from '../helpers/webhooks.ts';

/** Long enough that the hanging client's attempts are certainly still in flight while we look. */
const DELIVERY_TIMEOUT_MS = 120_000;
/** How long we wait for the healthy client: well inside the hanging attempts' time-out. */
const WAIT_MS = DELIVERY_TIMEOUT_MS / 3;

interface Party {
  client: ApiClient;
  receiver: Receiver;
}

describe('deliveries to different clients are independent', () => {
  let ts: TestServer;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    ts = await startTestServer({}, { jobs: true, timers: { webhookDeliveryTimeoutMs: DELIVERY_TIMEOUT_MS } });
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await ts?.stop();
  });

  async function party(label: string, hang: boolean): Promise<Party & { connect(): Promise<void> }> {
    const receiver = await startReceiver();
    receiver.behaviour.hang = hang;
    receivers.push(receiver);
    const client = await webhookClient(ts.baseUrl);
    await setWebhook(ts.baseUrl, client.clientId, receiver.url);
    const { userId } = await client.mh.registerUser({ clientUserId: label });
    return { client, receiver, connect: async () => void (await connectBank(client, userId)) };
  }

  it("a hanging receiver of client A does not delay client B's deliveries", async () => {
    const a = await party('hanging', true);
    const b = await party('healthy', false);

    // A's events reach its receiver, which never answers: A's attempts are now in flight.
    await a.connect();
    const aEvents = await waitUntil('A has events', WAIT_MS, async () => {
      const events = await allEvents(ts.baseUrl, a.client);
      return events.length >= 2 && events;
    });
    await waitUntil("A's receiver got every event", WAIT_MS, async () => a.receiver.received.length >= aEvents.length);

    // Then B's events: delivered and recorded while A's attempts still wait for an answer.
    await b.connect();
    const bEvents = await waitUntil("B's events delivered and recorded", WAIT_MS, async () => {
      const events = await allEvents(ts.baseUrl, b.client);
      return events.length >= 2 && events.every((e) => e.deliveries.some((d) => d.status === 'delivered')) && events;
    });
    const got = b.receiver.successesById();
    for (const e of bEvents) {
      expect(got.get(e.id)).toHaveLength(1);
      expect(e.deliveries).toEqual([expect.objectContaining({ status: 'delivered', responseCode: 200, error: null })]);
    }

    // A's attempts have not ended: none answered, none recorded.
    expect(a.receiver.received.every((r) => r.answered === null)).toBe(true);
    for (const e of await allEvents(ts.baseUrl, a.client)) expect(e.deliveries, e.eventType).toEqual([]);
    // B's requests all arrived after A's, so B was not simply served first.
    const lastOfA = Math.max(...a.receiver.received.map((r) => r.at));
    for (const r of b.receiver.received) expect(r.at).toBeGreaterThanOrEqual(lastOfA);
  });
});
