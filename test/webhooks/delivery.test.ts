/**
 * Delivery guarantees with real receivers on 127.0.0.1: a receiver that is down (connection refused,
 * or answering 500) for the first hour of sandbox time gets every event exactly once when it comes
 * up, signed and with back-off between the failed attempts; a slow or hanging receiver does not
 * hold up another client's receiver in the same scheduler run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { connectBank, MODELO_ID, type ApiClient } from '../helpers/api.ts';
import { createReceiver, signatureProblem, startReceiver, type Receiver, type WebhookBody } from '../helpers/webhook-receiver.ts';
import {
  adminCall, advanceClock, allEvents, attendedSync, clockNow, runScheduler, setBehaviour, setWebhook, webhookClient, type EventJson,
} from '../helpers/webhooks.ts';

const MINUTE_MS = 60_000;
/** The delivery time-out of this file's server: shorter than the slow receiver's delay. */
const DELIVERY_TIMEOUT_MS = 2_000;

interface Party {
  client: ApiClient;
  receiver: Receiver;
  secret: string;
  userId: string;
  connectionId: string;
}

describe('webhook deliveries', () => {
  let ts: TestServer;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    ts = await startTestServer({}, { timers: { webhookDeliveryTimeoutMs: DELIVERY_TIMEOUT_MS } });
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await ts?.stop();
  });

  async function party(receiver: Receiver, label: string): Promise<Party> {
    receivers.push(receiver);
    const client = await webhookClient(ts.baseUrl);
    const secret = await setWebhook(ts.baseUrl, client.clientId, receiver.url);
    const { userId } = await client.mh.registerUser({ clientUserId: label });
    const connectionId = await connectBank(client, userId, MODELO_ID, 'user_ok');
    return { client, receiver, secret, userId, connectionId };
  }

  /** Every request the receiver answered with a 2xx: valid signature, fresh, id header = body id, Moneyhub's shape. */
  function checkReceived(p: Party): void {
    for (const r of p.receiver.received) {
      expect(signatureProblem(p.secret, r.raw, r.signature, Math.floor(r.at / 1000))).toBeNull();
      const body = JSON.parse(r.raw) as WebhookBody;
      expect(Object.keys(body).sort()).toEqual(['eventType', 'id', 'payload', 'userId']);
      expect(r.eventId).toBe(body.id);
      expect(body.userId).toBe(p.userId);
      expect(typeof body.payload).toBe('object');
    }
  }

  it('a slow receiver and a hanging one do not hold up a fast one in the same run', async () => {
    const fast = await party(await startReceiver(), 'fast');
    const slow = await party(await startReceiver(), 'slow');
    const hung = await party(await startReceiver(), 'hung');
    slow.receiver.behaviour.delayMs = 7_000;
    hung.receiver.behaviour.hang = true;

    try {
      await runScheduler(ts.baseUrl);

      const fastEvents = await allEvents(ts.baseUrl, fast.client);
      expect(fastEvents.map((e) => e.eventType).sort()).toEqual(['newTransactions', 'syncCompleted']);
      const got = fast.receiver.successesById();
      for (const e of fastEvents) expect(got.get(e.id)).toHaveLength(1);
      checkReceived(fast);
      // Ordering, not speed: the fast receiver got its events before Mooring gave up on any slow or
      // hanging delivery, and all four dead-slow deliveries were under way at once (one time-out's
      // worth of waiting, not four in a row).
      const stuck = [...slow.receiver.received, ...hung.receiver.received];
      const firstCutOff = Math.min(...stuck.map((r) => r.closedAt ?? Infinity));
      expect(Math.max(...fast.receiver.received.map((r) => r.at))).toBeLessThan(firstCutOff);
      expect(Math.max(...stuck.map((r) => r.at))).toBeLessThan(firstCutOff);
      expect(slow.receiver.received.length).toBe(2);
      expect(hung.receiver.received.length).toBe(2);
      for (const p of [slow, hung]) {
        const events = await allEvents(ts.baseUrl, p.client);
        expect(events).toHaveLength(2);
        for (const e of events) expect(e.deliveries).toEqual([expect.objectContaining({ status: 'failed', responseCode: null })]);
      }
    } finally {
      // Stop delivering to them, so later runs are not slowed down.
      for (const p of [slow, hung]) {
        await adminCall(ts.baseUrl, 'DELETE', `/admin/clients/${encodeURIComponent(p.client.clientId)}/webhook`);
        await p.receiver.close();
      }
    }
  });

  it('a backlog of events for a hanging receiver does not hold up another client', async () => {
    const hung = await party(await startReceiver(), 'hung-backlog');
    hung.receiver.behaviour.hang = true;
    // More pending events than the dispatcher's 20 parallel deliveries (one syncCompleted per
    // attended sync), all older than the fast client's.
    for (let i = 0; i < 20; i += 1) await attendedSync(hung.client, hung.userId, hung.connectionId);
    const fast = await party(await startReceiver(), 'fast-backlog');
    try {
      await runScheduler(ts.baseUrl);

      const got = fast.receiver.successesById();
      const fastEvents = await allEvents(ts.baseUrl, fast.client);
      for (const e of fastEvents) expect(got.get(e.id)).toHaveLength(1);
      // Ordering, not speed: the fast receiver was served before any of the hanging one's deliveries timed out.
      const firstFast = Math.min(...fast.receiver.received.map((r) => r.at));
      const firstCutOff = Math.min(...hung.receiver.received.map((r) => r.closedAt ?? Infinity));
      expect(firstFast).toBeLessThan(firstCutOff);
    } finally {
      // Stop delivering to the hanging receiver, so later runs are not slowed down.
      await adminCall(ts.baseUrl, 'DELETE', `/admin/clients/${encodeURIComponent(hung.client.clientId)}/webhook`);
      await hung.receiver.close();
    }
  });

  it('retries while the receiver is down for an hour (refused / 500), then delivers every event exactly once', async () => {
    // A: nothing listens on its port for the first hour (connection refused). B: answers 500.
    const a = await party(await createReceiver(), 'refused');
    const b = await party(await startReceiver(), 'failing');
    b.receiver.behaviour.status = 500;
    const start = await clockNow(ts.baseUrl);

    // More events while down: B's connection loses its credentials right away.
    await setBehaviour(ts.baseUrl, b.connectionId, 'user_revoked');
    expect(await attendedSync(b.client, b.userId, b.connectionId)).toBe('error');

    let up = false;
    const allDelivered = async (): Promise<boolean> => {
      for (const p of [a, b]) {
        const events = await allEvents(ts.baseUrl, p.client);
        if (events.some((e) => !e.deliveries.some((d) => d.status === 'delivered'))) return false;
      }
      return true;
    };
    await runScheduler(ts.baseUrl);
    for (let step = 1; step <= 24; step += 1) {
      const now = Date.parse(await advanceClock(ts.baseUrl, 'PT10M'));
      const minutes = (now - start) / MINUTE_MS;
      if (step === 2) {
        await setBehaviour(ts.baseUrl, a.connectionId, 'user_revoked');
        expect(await attendedSync(a.client, a.userId, a.connectionId)).toBe('error');
      }
      if (step === 3) {
        await setBehaviour(ts.baseUrl, b.connectionId, 'user_ok');
        expect(await attendedSync(b.client, b.userId, b.connectionId)).toBe('ok');
      }
      if (!up && minutes >= 60) {
        up = true;
        await a.receiver.listen();
        b.receiver.behaviour.status = 200;
      }
      await runScheduler(ts.baseUrl);
      if (!up) {
        expect(a.receiver.received).toEqual([]);
        expect(b.receiver.successesById().size).toBe(0);
      }
      if (up && (await allDelivered())) break;
    }
    expect(up).toBe(true);

    for (const p of [a, b]) {
      const events = await allEvents(ts.baseUrl, p.client);
      const types = events.map((e) => e.eventType).sort();
      expect(types).toEqual(p === a
        ? ['connectionStatusChanged', 'newTransactions', 'syncCompleted', 'syncCompleted']
        : ['connectionRepaired', 'connectionStatusChanged', 'connectionStatusChanged', 'newTransactions', 'syncCompleted', 'syncCompleted', 'syncCompleted']);

      // Exactly one successful delivery per event at the receiver; every request was signed and well-formed.
      const got = p.receiver.successesById();
      expect([...got.keys()].sort()).toEqual(events.map((e) => e.id).sort());
      for (const e of events) {
        const deliveries = got.get(e.id) ?? [];
        expect(deliveries, `${e.eventType} ${e.id}`).toHaveLength(1);
        const body = JSON.parse(deliveries[0]?.raw ?? '{}') as WebhookBody;
        expect(body).toEqual({ id: e.id, eventType: e.eventType, userId: p.userId, payload: e.payload });
      }
      checkReceived(p);
      if (p === b) expect(b.receiver.received.filter((r) => r.answered === 500).length).toBeGreaterThan(0);

      for (const e of events) checkBackoff(e, p === a ? null : 500);
    }
    // The events created first failed for the whole hour: at least 6 attempts, and the gaps grew.
    const firstOfA = (await allEvents(ts.baseUrl, a.client)).find((e) => e.eventType === 'newTransactions') as EventJson;
    const gaps = gapsOf(firstOfA);
    expect(firstOfA.deliveries.length).toBeGreaterThanOrEqual(6);
    expect(gaps.at(-1) ?? 0).toBeGreaterThan(gaps[0] ?? 0);
  });

  function gapsOf(e: EventJson): number[] {
    const times = e.deliveries.map((d) => Date.parse(d.at));
    return times.slice(1).map((t, i) => t - (times[i] ?? t));
  }

  /** Failed attempts (with the receiver's code, or null when refused), then one success, with non-shrinking gaps. */
  function checkBackoff(e: EventJson, failureCode: number | null): void {
    const ds = e.deliveries;
    const label = `${e.eventType} ${JSON.stringify(ds)}`;
    expect(ds.length, label).toBeGreaterThanOrEqual(2);
    expect(ds.at(-1), label).toMatchObject({ status: 'delivered', responseCode: 200 });
    for (const d of ds.slice(0, -1)) expect(d, label).toMatchObject({ status: 'failed', responseCode: failureCode });
    const times = ds.map((d) => Date.parse(d.at));
    expect([...times].sort((x, y) => x - y), label).toEqual(times);
    const gaps = gapsOf(e);
    // (Attempts happen at scheduler runs 10 sandbox minutes apart, plus some real milliseconds.)
    for (let i = 1; i < gaps.length; i += 1) expect(gaps[i] ?? 0, label).toBeGreaterThanOrEqual((gaps[i - 1] ?? 0) - 5_000);
    // Never retried sooner than the first back-off step.
    expect(Math.min(...gaps), label).toBeGreaterThanOrEqual(30_000);
  }
});
