/**
 * A real webhook receiver for tests: a node:http server on 127.0.0.1 that records every request
 * (raw body, Mooring headers, what it answered) and can be told to answer an error status, to be
 * slow, to hang, or not to listen at all (connection refused). Signatures are verified here with
 * node:crypto, independently of Mooring's own signing code.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { freePort } from './server.ts';

export interface Received {
  /** Real time (ms) the request arrived. */
  at: number;
  eventId: string | null;
  signature: string | null;
  contentType: string | null;
  raw: string;
  /** What the receiver answered (null when it never answered). */
  answered: number | null;
  /** Real time (ms) the exchange ended: answered, or cut off by the sender (null while open). */
  closedAt: number | null;
}

export interface ReceiverBehaviour {
  /** Status to answer (default 200). */
  status: number;
  /** Wait this long before answering (default 0). */
  delayMs: number;
  /** Never answer. */
  hang: boolean;
}

export interface Receiver {
  port: number;
  url: string;
  received: Received[];
  behaviour: ReceiverBehaviour;
  listening: boolean;
  listen(): Promise<void>;
  close(): Promise<void>;
  /** Requests answered with a 2xx, per Mooring-Event-Id. */
  successesById(): Map<string, Received[]>;
}

/** Creates a receiver on a free loopback port; it only accepts connections after listen(). */
export async function createReceiver(path = '/hook'): Promise<Receiver> {
  const port = await freePort();
  const received: Received[] = [];
  const behaviour: ReceiverBehaviour = { status: 200, delayMs: 0, hang: false };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const header = (name: string): string | null => {
        const v = req.headers[name];
        return typeof v === 'string' ? v : null;
      };
      const entry: Received = {
        at: Date.now(),
        eventId: header('mooring-event-id'),
        signature: header('mooring-signature'),
        contentType: header('content-type'),
        raw: Buffer.concat(chunks).toString('utf8'),
        answered: null,
        closedAt: null,
      };
      res.on('close', () => {
        entry.closedAt ??= Date.now();
      });
      received.push(entry);
      if (behaviour.hang) return;
      const { status, delayMs } = behaviour;
      const answer = (): void => {
        if (res.destroyed) return;
        entry.answered = status;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'nope');
      };
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  });
  const receiver: Receiver = {
    port,
    url: `http://127.0.0.1:${port}${path}`,
    received,
    behaviour,
    listening: false,
    async listen() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      });
      receiver.listening = true;
    },
    async close() {
      if (!receiver.listening) return;
      receiver.listening = false;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    successesById() {
      const out = new Map<string, Received[]>();
      for (const r of received) {
        if (r.answered === null || r.answered < 200 || r.answered >= 300 || r.eventId === null) continue;
        out.set(r.eventId, [...(out.get(r.eventId) ?? []), r]);
      }
      return out;
    },
  };
  return receiver;
}

/** Starts a listening receiver. */
export async function startReceiver(path?: string): Promise<Receiver> {
  const r = await createReceiver(path);
  await r.listen();
  return r;
}

/**
 * What a receiver does with `Mooring-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`:
 * an explanation of what is wrong, or null when the signature is valid and at most 300 s from now.
 */
export function signatureProblem(secret: string, raw: string, header: string | null, nowSeconds = Math.floor(Date.now() / 1000)): string | null {
  if (header === null) return 'no Mooring-Signature header';
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (m === null) return `malformed Mooring-Signature: ${header}`;
  const t = Number(m[1]);
  if (Math.abs(nowSeconds - t) >= 300) return `timestamp ${t} is ${nowSeconds - t} s away from now`;
  const expected = createHmac('sha256', secret).update(`${t}.${raw}`).digest();
  const given = Buffer.from(m[2] ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) ? null : 'HMAC does not match';
}

export interface WebhookBody {
  id: string;
  eventType: string;
  userId: string;
  payload: Record<string, unknown>;
}
