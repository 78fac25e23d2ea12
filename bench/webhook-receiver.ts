/**
 * Child process: a webhook receiver as a client would run one — node:http on 127.0.0.1, reads the raw
 * body, checks the Mooring-Signature (src/webhooks/signing.ts `verify`, the function the README shows
 * receivers) and answers 200. It records when each event id arrived (wall clock, ms), so the bench
 * can compute event-to-delivery latency and delivery throughput. Requests to a path ending in
 * `/hang` are read and never answered (a client's dead receiver); they are only counted.
 * argv: <port> <secret>
 * Operations (ipc.ts `call`): `stats` → { received, duplicates, badSignatures, firstAt, lastAt },
 * `arrivals` → [eventId, arrivedAtMs][] since the last reset, `hung` → requests left unanswered
 * since the last reset, `reset`.
 */
import http from 'node:http';
import { verify } from '../src/webhooks/signing.ts';
import { reportFailure, serveParent } from './ipc.ts';

const [portRaw = '0', secret = ''] = process.argv.slice(2);

let arrivals = new Map<string, number>();
let duplicates = 0;
let badSignatures = 0;
let firstAt: number | null = null;
let lastAt: number | null = null;
let hung = 0;

try {
  const server = http.createServer((req, res) => {
    if (req.url?.endsWith('/hang') === true) {
      hung += 1;
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      const body = Buffer.concat(chunks).toString('utf8');
      const sig = req.headers['mooring-signature'];
      if (typeof sig !== 'string' || !verify(secret, body, sig, Math.floor(at / 1000))) {
        badSignatures += 1;
        res.writeHead(400, { 'content-type': 'text/plain' }).end('bad signature');
        return;
      }
      const id = req.headers['mooring-event-id'];
      if (typeof id === 'string') {
        if (arrivals.has(id)) duplicates += 1;
        else arrivals.set(id, at);
      }
      firstAt ??= at;
      lastAt = at;
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(Number(portRaw), '127.0.0.1', resolve));
  serveParent({
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
    async call(op) {
      if (op === 'stats') return { received: arrivals.size, duplicates, badSignatures, firstAt, lastAt };
      if (op === 'arrivals') return [...arrivals];
      if (op === 'hung') return hung;
      if (op === 'reset') {
        arrivals = new Map();
        duplicates = 0;
        badSignatures = 0;
        firstAt = null;
        lastAt = null;
        hung = 0;
        return null;
      }
      throw new Error(`unknown operation ${op}`);
    },
  });
} catch (err) {
  reportFailure(err);
}
