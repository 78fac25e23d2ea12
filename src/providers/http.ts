/**
 * The HTTP edge every provider adapter shares: one way to call a provider (time-out, size limit,
 * JSON parsing, shape checks) and ONE function, toProviderError, that turns whatever went wrong
 * into the closed set of ProviderErrors. Adapters add only a classifier for their provider's own
 * error bodies; nothing else decides error kinds.
 */
import { performance } from 'node:perf_hooks';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import { currentCallContext, runInEdgeScope, type EdgeScope } from '../provider-calls/context.ts';
import { ProviderError, type ProviderErrorKind } from './provider.ts';

/** Providers that answer with more than this are not trusted. */
const MAX_RESPONSE_BYTES = 5 * 1024 * 1024;

/**
 * The provider answered with a non-2xx status. `body` is its parsed JSON (or undefined).
 * `retryAfterMs`: how long the provider asked us to wait (from its rate-limit headers, see
 * retryAfterMsOf), relative, so that Mooring's domain clock can place it; undefined when it gave none.
 */
export class HttpStatusFailure extends Error {
  readonly status: number;
  readonly body: unknown;
  readonly retryAfterMs: number | undefined;
  constructor(status: number, body: unknown, url: string, opts: { retryAfterMs?: number | undefined } = {}) {
    super(`HTTP ${status} from ${url}`);
    this.status = status;
    this.body = body;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** A reset further away than this is not believed (a garbled header must not silence a connection for years). */
export const MAX_RETRY_AFTER_MS = 31 * 24 * 3_600_000;
/** Integer reset values at least this large are Unix times (seconds), not seconds to wait. */
const EPOCH_SECONDS_THRESHOLD = 1_000_000_000;

/**
 * How long a provider asked us to wait, in milliseconds, from its answer's headers; undefined
 * when it says nothing usable. Read in this order: `Retry-After` (RFC 9110: delta-seconds or an
 * HTTP-date), `RateLimit-Reset` (IETF draft: seconds until the reset), `X-RateLimit-Reset` and
 * GoCardless's `X-RateLimit-Account-Success-Reset` (seconds until the reset; a value that large
 * is a Unix time in seconds, as some providers send) — the last one first when its `…-Remaining`
 * is 0 (the per-account daily limit, not the per-minute API limit, refused the call). The
 * `X-RateLimit-*` names are also read as GoCardless documents them, `HTTP_X_RATELIMIT_*`
 * (rateLimitHeader). A date is turned into a delta against the
 * answer's own `Date` header when it has one (the provider's clock on both sides), else against
 * `realNowMs`, the real time the answer arrived: provider clocks are real clocks, never
 * Mooring's domain clock, which is why the result is relative.
 */
export function retryAfterMsOf(headers: { get(name: string): string | null }, realNowMs: number): number | undefined {
  const dateHeader = headers.get('date');
  const answeredAt = dateHeader === null ? Number.NaN : Date.parse(dateHeader);
  const reference = Number.isNaN(answeredAt) ? realNowMs : answeredAt;
  const bounded = (ms: number): number | undefined => (Number.isFinite(ms) ? Math.min(Math.max(0, Math.ceil(ms)), MAX_RETRY_AFTER_MS) : undefined);
  const seconds = (raw: string): number | undefined => {
    if (!/^\d+$/.test(raw)) return undefined;
    const n = Number(raw);
    return bounded(n >= EPOCH_SECONDS_THRESHOLD ? n * 1000 - reference : n * 1000);
  };
  const retryAfter = headers.get('retry-after')?.trim();
  if (retryAfter !== undefined && retryAfter !== '') {
    if (/^\d+$/.test(retryAfter)) return bounded(Number(retryAfter) * 1000);
    const at = Date.parse(retryAfter);
    if (!Number.isNaN(at)) return bounded(at - reference);
  }
  // GoCardless: an exhausted per-account daily limit outlasts the per-minute API window named beside it.
  if (rateLimitHeader(headers, 'x-ratelimit-account-success-remaining')?.trim() === '0') {
    const raw = rateLimitHeader(headers, 'x-ratelimit-account-success-reset')?.trim();
    const ms = raw === undefined ? undefined : seconds(raw);
    if (ms !== undefined) return ms;
  }
  for (const name of ['ratelimit-reset', 'x-ratelimit-reset', 'x-ratelimit-account-success-reset']) {
    const raw = rateLimitHeader(headers, name)?.trim();
    const ms = raw === undefined ? undefined : seconds(raw);
    if (ms !== undefined) return ms;
  }
  return undefined;
}

/**
 * A rate-limit header under either spelling providers use: `x-ratelimit-…` (hyphens) or the
 * `HTTP_X_RATELIMIT_…` names GoCardless documents (underscores, as its docs print them); header
 * names are case-insensitive either way. `name` is given in the hyphenated form.
 */
export function rateLimitHeader(headers: { get(name: string): string | null }, name: string): string | null {
  const hyphens = headers.get(name);
  if (hyphens !== null) return hyphens;
  return name.startsWith('x-') ? headers.get(`http_${name.replace(/-/g, '_')}`) : null;
}

/** The provider answered 2xx, but not with anything we can read. */
export class ResponseShapeFailure extends Error {}

/**
 * What the user's browser brought back to a journey's callback (its parameters) cannot be read or
 * verified: no call to the provider failed, so it becomes a `bad_response` marked `fromCallback`.
 */
export class CallbackFailure extends Error {}

export interface HttpCall {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  /**
   * The endpoint as a path template of the provider's API, e.g. `/accounts/{accountId}/balances`:
   * no ids of the provider's, no query values (the provider call log records this, never the URL).
   */
  endpoint: string;
  headers?: Record<string, string>;
  json?: unknown;
  form?: Record<string, string>;
  timeoutMs: number;
  /** An undici dispatcher for the call (mutual TLS: the provider's transport certificate). */
  dispatcher?: Dispatcher;
  /** Told the headers of every answer, 2xx or not (e.g. GoCardless's per-account rate-limit headers). */
  onHeaders?: (headers: Headers) => void;
  /** The fetch's stop on the upstream's first rate limit: refuses the call before it is sent once tripped. */
  stop?: RateLimitStop;
}

/**
 * One adapter operation's stop on an upstream's rate limit (SPEC section 10: no call for that
 * connection goes to the upstream before the reset time). The first failure that means
 * `rate_limited` trips it; from then on every call made through it (callProvider's `stop`) is
 * refused before it is sent, with that same failure, so concurrent per-account work (mapLimit)
 * and further pages end at once without reaching the upstream.
 */
export class RateLimitStop {
  #tripped: { failure: unknown } | undefined;
  readonly #isRateLimit: (failure: unknown) => boolean;
  constructor(providerName: string, classify?: FailureClassifier) {
    this.#isRateLimit = (failure) => toProviderError(failure, providerName, classify).kind === 'rate_limited';
  }
  /** The rate-limit failure that tripped it, if one has. */
  get tripped(): { failure: unknown } | undefined {
    return this.#tripped;
  }
  /** Throws the tripping failure when tripped: call before anything is sent to the upstream. */
  check(): void {
    if (this.#tripped !== undefined) throw this.#tripped.failure;
  }
  /** Looks at a call's failure; trips on the first that is a rate limit. */
  see(failure: unknown): void {
    if (this.#tripped === undefined && this.#isRateLimit(failure)) this.#tripped = { failure };
  }
}

async function readLimited(res: Response, limitBytes: number): Promise<string> {
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limitBytes) {
      await reader.cancel().catch(() => undefined);
      throw new ResponseShapeFailure(`response larger than ${limitBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The header of the UK Open Banking (FAPI) protocol that names one interaction on both sides. */
const INTERACTION_HEADER = 'x-fapi-interaction-id';

/** What a recorded call ended with. `failure`: the raw failure it threw (or the failure its answer means). */
export interface CallEnd {
  status: number | null;
  interactionId: string | null;
  failure?: unknown;
}

/**
 * Starts timing one HTTP call to a provider for the provider call log; call `end` once it is
 * over. Outside a call context (see ../provider-calls/context.ts) nothing is recorded. Inside an
 * adapter operation (atEdge) the row waits for the operation's outcome, so that its error kind is
 * the one the adapter finally decided; otherwise its failure is classified by HTTP status alone.
 */
export function startProviderCall(method: string, endpoint: string): { end(e: CallEnd): void } {
  const ctx = currentCallContext();
  if (ctx === undefined) return { end: () => undefined };
  const at = ctx.sink.now();
  const started = performance.now();
  return {
    end(e) {
      const row = {
        at, providerId: ctx.who.providerId, connectionId: ctx.who.connectionId, syncId: ctx.who.syncId ?? null, journeyId: ctx.who.journeyId ?? null,
        method, endpoint, status: e.status, latencyMs: Math.max(0, Math.round(performance.now() - started)), errorKind: null, interactionId: e.interactionId,
      };
      const edge = ctx.edge;
      if (e.failure === undefined) ctx.sink.record(row);
      else if (edge?.open === true) edge.pending.push({ row, failure: e.failure });
      else ctx.sink.record({ ...row, errorKind: edge === null ? toProviderError(e.failure, '').kind : edge.kindOf(e.failure) });
    },
  };
}

/** The raw failure a provider's non-2xx answer means (its JSON body read from a clone, size-limited), for calls made by libraries. */
export async function failureOfAnswer(res: Response, what: string): Promise<HttpStatusFailure> {
  let body: unknown;
  try {
    body = JSON.parse(await readLimited(res.clone(), 64 * 1024));
  } catch {
    body = undefined;
  }
  return new HttpStatusFailure(res.status, body, what);
}

/** Calls a provider and answers its parsed JSON body (undefined when empty). Throws raw failures; see toProviderError. */
export async function callProvider(call: HttpCall): Promise<unknown> {
  call.stop?.check();
  const recording = startProviderCall(call.method, call.endpoint);
  const sentInteraction = call.headers?.[INTERACTION_HEADER] ?? null;
  let end: CallEnd = { status: null, interactionId: sentInteraction };
  try {
    const answer = await sendToProvider(call, (status, headers) => {
      end = { status, interactionId: headers.get(INTERACTION_HEADER) ?? sentInteraction };
    });
    recording.end(end);
    return answer;
  } catch (err) {
    recording.end({ ...end, failure: err });
    call.stop?.see(err);
    throw err;
  }
}

async function sendToProvider(call: HttpCall, answered: (status: number, headers: Headers) => void): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
  let body: string | undefined;
  if (call.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(call.json);
  } else if (call.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(call.form).toString();
  }
  const signal = AbortSignal.timeout(call.timeoutMs);
  const init = { method: call.method, headers, body, signal, redirect: 'manual' as const };
  const res = call.dispatcher === undefined
    ? await fetch(call.url, init)
    : ((await undiciFetch(call.url, { ...init, dispatcher: call.dispatcher })) as unknown as Response);
  answered(res.status, res.headers);
  call.onHeaders?.(res.headers);
  const text = await readLimited(res, MAX_RESPONSE_BYTES);
  let parsed: unknown;
  let unreadable = false;
  if (text.trim() !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      unreadable = true;
    }
  }
  if (res.status < 200 || res.status >= 300) {
    // Only the provider's own wait matters here; real time, because it is the provider's clock that reset counts on.
    throw new HttpStatusFailure(res.status, parsed, call.url, { retryAfterMs: retryAfterMsOf(res.headers, Date.now()) });
  }
  if (unreadable) throw new ResponseShapeFailure(`unparsable JSON from ${call.url}`);
  return parsed;
}

/** Checks a provider's answer against a compiled TypeBox schema; the provider is never trusted. */
export function checkShape<T>(validator: { Check(value: unknown): value is T }, value: unknown, what: string): T {
  if (!validator.Check(value)) throw new ResponseShapeFailure(`${what} did not have the expected shape`);
  return value;
}

/** Parses a provider's date-time; a bad one makes the whole answer unreadable. */
export function providerDate(value: string, what: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new ResponseShapeFailure(`${what} is not a date-time`);
  return d;
}

/** An adapter's reading of its provider's own error bodies; undefined falls back to the HTTP status. */
export type FailureClassifier = (failure: HttpStatusFailure) => ProviderErrorKind | { kind: ProviderErrorKind; detail: string } | undefined;

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

function kindForStatus(status: number): ProviderErrorKind {
  if (status === 401 || status === 403) return 'credentials';
  if (status === 429) return 'rate_limited';
  if (status === 408) return 'timeout';
  if (status >= 500) return 'unavailable';
  return 'bad_response';
}

const safeDetail = (kind: ProviderErrorKind, name: string): string => {
  switch (kind) {
    case 'credentials':
      return `${name} no longer accepts this connection's authorisation; the user must authorise again`;
    case 'consent_expired':
      return `This connection's consent expired at ${name}; the user must authorise again`;
    case 'mfa_required':
      return `${name} needs the user to be present to confirm with a one-time code`;
    case 'unavailable':
      return `${name} is temporarily unavailable`;
    case 'bad_response':
      return `${name} answered with something Mooring could not read`;
    case 'timeout':
      return `${name} did not answer in time`;
    case 'rate_limited':
      return `${name} limited how often Mooring may ask; it will try again later`;
    case 'journey_rejected':
      return `The authorisation was cancelled or declined at ${name}`;
    case 'invalid_input':
      return `${name} did not accept what was entered`;
  }
};

const errorCode = (err: unknown): string | undefined => {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
};

/** The one place a provider failure becomes a ProviderError. `cause` keeps the raw failure for logs only. */
export function toProviderError(err: unknown, providerName: string, classify?: FailureClassifier): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof HttpStatusFailure) {
    const withdrawn = err.status === 410 ? { kind: 'unavailable' as const, detail: `${providerName} has withdrawn this service` } : undefined;
    const c = classify?.(err) ?? withdrawn ?? kindForStatus(err.status);
    const kind = typeof c === 'string' ? c : c.kind;
    const retryAfterMs = kind === 'rate_limited' ? err.retryAfterMs : undefined;
    return new ProviderError(kind, typeof c === 'string' ? safeDetail(kind, providerName) : c.detail, { cause: err, retryAfterMs });
  }
  if (err instanceof ResponseShapeFailure) return new ProviderError('bad_response', safeDetail('bad_response', providerName), { cause: err });
  if (err instanceof CallbackFailure) {
    return new ProviderError('bad_response', `The answer from ${providerName} that came back through the browser could not be read`, { cause: err, fromCallback: true });
  }
  const name = (err as { name?: unknown }).name;
  if (name === 'TimeoutError' || name === 'AbortError' || TIMEOUT_CODES.has(errorCode(err) ?? '')) {
    return new ProviderError('timeout', safeDetail('timeout', providerName), { cause: err });
  }
  if (err instanceof TypeError && err.message === 'fetch failed') {
    return new ProviderError('unavailable', `${providerName} could not be reached`, { cause: err });
  }
  return new ProviderError('bad_response', safeDetail('bad_response', providerName), { cause: err });
}

/**
 * Runs one adapter operation and translates any failure at the edge. The provider calls it made
 * are recorded once its outcome is known: the call whose failure the operation ended with gets
 * the kind the operation's ProviderError has (a 401 that became `credentials` is logged so);
 * every other failed call gets the kind the adapter's classifier gives its own failure.
 */
export async function atEdge<T>(providerName: string, classify: FailureClassifier | undefined, fn: () => Promise<T>): Promise<T> {
  const ctx = currentCallContext();
  if (ctx === undefined) {
    try {
      return await fn();
    } catch (err) {
      throw toProviderError(err, providerName, classify);
    }
  }
  const scope: EdgeScope = { open: true, pending: [], kindOf: (failure) => toProviderError(failure, providerName, classify).kind };
  const settle = (final: { raw: unknown; error: ProviderError } | undefined): void => {
    scope.open = false;
    for (const { row, failure } of scope.pending.splice(0)) {
      const endedWithIt = final !== undefined && (failure === final.raw || failure === final.error.cause || failure === final.error);
      ctx.sink.record({ ...row, errorKind: endedWithIt ? final.error.kind : scope.kindOf(failure) });
    }
  };
  try {
    const out = await runInEdgeScope(ctx, scope, fn);
    settle(undefined);
    return out;
  } catch (err) {
    const error = toProviderError(err, providerName, classify);
    settle({ raw: err, error });
    throw error;
  }
}

/** Turns a provider's decimal amount ("-12.3", "1000.00") into integer minor units, exactly. */
export function decimalToMinor(amount: string, currency: string): number {
  const m = /^(-?)(\d{1,13})(?:\.(\d{1,5}))?$/.exec(amount.trim());
  if (m === null) throw new ResponseShapeFailure('an amount is not a decimal number');
  const exponent = ZERO_DECIMAL_CURRENCIES.has(currency) ? 0 : 2;
  const fraction = (m[3] ?? '').padEnd(5, '0');
  const whole = Number(m[2]) * 10 ** exponent + Number(fraction.slice(0, exponent) || '0');
  // Sub-minor digits are rounded half away from zero.
  const rounded = Number(fraction[exponent] ?? '0') >= 5 ? whole + 1 : whole;
  return m[1] === '-' && rounded !== 0 ? -rounded : rounded;
}

const ZERO_DECIMAL_CURRENCIES = new Set(['JPY', 'KRW', 'ISK', 'CLP', 'VND']);
