/**
 * One delivery attempt: the signed POST of an event to its client's URL and what came of it, in
 * the words of SPEC section 9 (`delivered` for a 2xx within the time-out, otherwise `failed` and
 * why). Connections are kept alive and reused; redirects are not followed.
 */
import http from 'node:http';
import https from 'node:https';
import type { LeasedEvent } from './repository.ts';
import { sign } from './signing.ts';
import { checkWebhookUrl, guardedLookup, type UrlPolicy } from './url-policy.ts';

export interface Outcome {
  ok: boolean;
  responseCode: number | null;
  error: string | null;
}

/** An attempt cut off by stop(). */
export class DeliveryStopped extends Error {}

export function webhookSender(opts: { policy: UrlPolicy; timeoutMs: number; realNowMs: () => number }) {
  const lookups = { http: guardedLookup(opts.policy, true), https: guardedLookup(opts.policy, false) };
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  const active = new Set<http.ClientRequest>();
  let stopped = false;

  const timeoutText = `no answer within ${opts.timeoutMs % 1000 === 0 ? `${opts.timeoutMs / 1000} s` : `${opts.timeoutMs} ms`}`;

  async function send(e: LeasedEvent): Promise<Outcome> {
    if (e.url === null || e.secret === null) return { ok: false, responseCode: null, error: 'the client has no webhook endpoint' };
    const verdict = await checkWebhookUrl(e.url, opts.policy);
    if (!verdict.ok) return { ok: false, responseCode: null, error: `refused: ${verdict.reason}` };
    const body = JSON.stringify({ id: e.id, eventType: e.event_type, userId: e.user_id, payload: e.payload });
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Mooring-Webhooks/1',
      'mooring-event-id': e.id,
      'mooring-signature': sign(e.secret, body, Math.floor(opts.realNowMs() / 1000)),
      'content-length': String(Buffer.byteLength(body)),
    };
    try {
      const { status, location } = await post(e.url, body, headers);
      if (status >= 200 && status < 300) return { ok: true, responseCode: status, error: null };
      if (status >= 300 && status < 400) {
        return { ok: false, responseCode: status, error: `the receiver answered ${status}, a redirect${location === null ? '' : ` to ${location.slice(0, 200)}`}, which is never followed` };
      }
      return { ok: false, responseCode: status, error: `the receiver answered ${status}` };
    } catch (err) {
      if (err instanceof DeliveryStopped) throw err;
      return { ok: false, responseCode: null, error: failureText(err) };
    }
  }

  function failureText(err: unknown): string {
    const code = (err as { code?: unknown }).code;
    if (code === 'ETIMEDOUT') return timeoutText;
    if (code === 'EADDRNOTALLOWED') return err instanceof Error ? err.message : 'refused';
    if (code === 'ECONNREFUSED') return 'could not connect to the receiver (connection refused)';
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the receiver\'s host does not resolve';
    if (code === 'ECONNRESET' || code === 'EPIPE') return 'the receiver closed the connection without answering';
    return `could not reach the receiver${typeof code === 'string' ? ` (${code})` : ''}`;
  }

  /**
   * One POST on a kept-alive connection; redirects are not followed; a new connection's DNS lookup
   * refuses addresses the policy forbids. A request on a reused connection that the receiver had
   * just closed is sent once more on a new one (it cannot have been processed).
   */
  function post(url: string, body: string, headers: Record<string, string>, mayRetry = true): Promise<{ status: number; location: string | null }> {
    return new Promise((resolve, reject) => {
      if (stopped) {
        reject(new DeliveryStopped('stopped'));
        return;
      }
      const target = new URL(url);
      const secure = target.protocol === 'https:';
      let timedOut = false;
      let answered = false;
      const request = (secure ? https.request : http.request)(
        target,
        { method: 'POST', headers, lookup: secure ? lookups.https : lookups.http, agent: secure ? agents.https : agents.http },
        (res) => {
          answered = true;
          res.resume();
          res.on('end', () => {
            finish();
            const location = res.headers.location;
            resolve({ status: res.statusCode ?? 0, location: typeof location === 'string' ? location : null });
          });
          res.on('error', (err) => fail(err));
        },
      );
      active.add(request);
      const finish = (): void => {
        clearTimeout(timer);
        active.delete(request);
      };
      const fail = (err: Error): void => {
        finish();
        if (stopped) reject(new DeliveryStopped('stopped'));
        else if (timedOut) reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
        else if (mayRetry && !answered && request.reusedSocket && (err as { code?: unknown }).code === 'ECONNRESET') post(url, body, headers, false).then(resolve, reject);
        else reject(err);
      };
      // A limit on the whole exchange, not just on idle time: a receiver that trickles is cut off too.
      const timer = setTimeout(() => {
        timedOut = true;
        request.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
      }, opts.timeoutMs);
      request.on('error', fail);
      request.end(body);
    });
  }

  return {
    /** Sends one event; throws only DeliveryStopped. */
    send,
    /** Cuts off the requests in flight (they reject with DeliveryStopped) and closes kept-alive connections. */
    stop(): void {
      stopped = true;
      for (const r of active) r.destroy(new DeliveryStopped('stopped'));
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
