/**
 * A small closed-loop HTTP/1.1 load generator on raw keep-alive sockets: `connections` sockets, each
 * with exactly one request in flight, sending the next request as soon as the previous response is
 * complete. Raw sockets keep the generator's own CPU cost low, which matters on a 2-core machine
 * where the generator, the server under test and PostgreSQL share the cores.
 *
 * Responses completing during the warm-up are discarded; throughput and latency are computed from
 * the responses that complete inside the measurement window.
 */
import net from 'node:net';

export interface LoadSpec {
  host: string;
  port: number;
  /** The complete request (request line, headers, body), sent as-is for every request. */
  request: Buffer;
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** Status every response must have; others are counted as bad. */
  expectStatus: number;
  /** Called when the warm-up ends and measuring begins (e.g. to snapshot CPU counters). */
  onMeasureStart?: () => void | Promise<void>;
}

export interface LoadResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** Responses with a status other than expectStatus (inside the window). */
  badStatus: number;
  /** Socket errors or unexpected closes (whole run). */
  errors: number;
  firstBadStatus: string | null;
}

interface Parsed {
  status: number;
  /** Bytes the whole response occupies at the start of the buffer. */
  length: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Parses one complete response at the start of buf, or answers null when more bytes are needed. */
export function parseResponse(buf: Buffer): Parsed | null {
  const headerEnd = buf.indexOf(CRLFCRLF);
  if (headerEnd === -1) return null;
  const head = buf.toString('latin1', 0, headerEnd);
  const status = Number(head.slice(9, 12));
  const bodyStart = headerEnd + 4;
  const lower = head.toLowerCase();
  const cl = /\r\ncontent-length:[ \t]*(\d+)/.exec(lower);
  if (cl !== null && cl[1] !== undefined) {
    const end = bodyStart + Number(cl[1]);
    return buf.length >= end ? { status, length: end } : null;
  }
  if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) {
    let pos = bodyStart;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', pos, 'latin1');
      if (lineEnd === -1) return null;
      const size = parseInt(buf.toString('latin1', pos, lineEnd), 16);
      if (Number.isNaN(size)) throw new Error('malformed chunked response');
      if (size === 0) {
        // Last chunk; no trailers expected, so the terminating CRLF follows.
        const end = lineEnd + 4;
        return buf.length >= end ? { status, length: end } : null;
      }
      pos = lineEnd + 2 + size + 2;
      if (buf.length < pos) return null;
    }
  }
  // No body framing: a body-less response (204, 304).
  return { status, length: bodyStart };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? Number.NaN;
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const nowMs = (): number => performance.now();
  const t0 = nowMs();
  const measureStart = t0 + spec.warmupMs;
  const end = measureStart + spec.durationMs;
  const latencies: number[] = [];
  let badStatus = 0;
  let errors = 0;
  let firstBadStatus: string | null = null;
  let measuring = false;

  const measureStarted = new Promise<void>((resolve) => {
    setTimeout(() => {
      measuring = true;
      Promise.resolve(spec.onMeasureStart?.()).then(resolve, resolve);
    }, spec.warmupMs);
  });

  const runConnection = (): Promise<void> =>
    new Promise<void>((resolve) => {
      let socket: net.Socket;
      let buf: Buffer = Buffer.alloc(0);
      let sentAt = 0;
      let done = false;

      const finish = (): void => {
        if (done) return;
        done = true;
        socket.destroy();
        resolve();
      };
      const send = (): void => {
        if (nowMs() >= end) return finish();
        sentAt = nowMs();
        socket.write(spec.request);
      };
      const connect = (): void => {
        buf = Buffer.alloc(0);
        socket = net.connect({ host: spec.host, port: spec.port });
        socket.setNoDelay(true);
        socket.on('connect', send);
        socket.on('data', (chunk: Buffer) => {
          buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
          for (;;) {
            let parsed: Parsed | null;
            try {
              parsed = parseResponse(buf);
            } catch {
              errors += 1;
              socket.destroy();
              return;
            }
            if (parsed === null) return;
            const t = nowMs();
            const raw = buf;
            buf = buf.subarray(parsed.length);
            if (measuring && t <= end) {
              latencies.push(t - sentAt);
              if (parsed.status !== spec.expectStatus) {
                badStatus += 1;
                firstBadStatus ??= raw.toString('utf8', 0, Math.min(raw.length, parsed.length, 600));
              }
            }
            send();
          }
        });
        socket.on('error', () => {
          errors += 1;
        });
        socket.on('close', () => {
          if (done) return;
          if (nowMs() >= end) return finish();
          errors += 1;
          // The server closed the connection (or it failed): reconnect and carry on.
          setTimeout(connect, 10);
        });
      };
      connect();
    });

  await Promise.all(Array.from({ length: spec.connections }, runConnection));
  await measureStarted;

  const sorted = Float64Array.from(latencies).sort();
  const sum = latencies.reduce((a, b) => a + b, 0);
  return {
    requests: latencies.length,
    rps: latencies.length / (spec.durationMs / 1000),
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length > 0 ? (sorted[sorted.length - 1] ?? Number.NaN) : Number.NaN,
    meanMs: latencies.length > 0 ? sum / latencies.length : Number.NaN,
    badStatus,
    errors,
    firstBadStatus,
  };
}

/** Builds a raw HTTP/1.1 request. */
export function httpRequest(method: string, host: string, path: string, headers: Record<string, string>, body?: string): Buffer {
  const bodyBuf = body === undefined ? null : Buffer.from(body);
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, 'Connection: keep-alive'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (bodyBuf !== null) lines.push(`Content-Length: ${bodyBuf.length}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return bodyBuf === null ? head : Buffer.concat([head, bodyBuf]);
}
