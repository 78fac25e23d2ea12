/**
 * What every sandbox bank shares: finding the catalog entry a request is for, refusing every call
 * while the provider is retired or in a declared outage, bank-side errors, and client credentials.
 */
import { sameSecret } from '../../crypto/compare.ts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/db.ts';
import type { Catalog, CatalogEntry } from '../../providers/catalog.ts';
import type { AdapterKind } from '../../providers/kinds.ts';
import { providersRepository } from '../../providers/repository.ts';
import type { SandboxObBanks } from './fapi-provider.ts';

export interface SandboxBankDeps {
  db: Db;
  /** The domain clock: business times (as-of, transactions, consent expiry) follow it. */
  clock: Clock;
  /** Read on every request, so a catalog built after the server listens works too. */
  catalog: Catalog;
  /** The secret Mooring's valuation adapter authenticates with (client id `mooring`). */
  sandboxClientSecret: string;
  /**
   * Mooring's PUBLIC_URL: the only origin the banks send a customer back to (their client
   * credentials are public in sandbox mode, so any other redirect would make them an open redirector).
   */
  publicUrl: string;
  /** Every call waits this long before answering (a realistic bank latency for load tests). */
  latencyMs?: number;
  /** How long every call of a `user_slow` connection takes. */
  slowCallMs: number;
  /** The Open Banking banks' authorization servers (null: no Open Banking banks are served). */
  openBanking: SandboxObBanks | null;
  /**
   * The Enable Banking counterpart (absent: not served): Mooring's public URL (its pages and the one
   * redirect URL its applications whitelist) and the catalog whose `enablebanking` entries register
   * their applications with it (the application id and the public half of the configured key).
   */
  enableBanking?: { publicUrl: string; applications: Catalog };
}

export const SANDBOX_CLIENT_ID = 'mooring';

/** An answer the bank gives on purpose; each bank kind renders it in its own error shape. */
export class BankError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** A refusal of the bearer token: 401 with no body (Read/Write API profile, "401 (Unauthorized)"). */
export const INVALID_TOKEN = 'invalid_token';
export const invalidToken = (why: string): BankError =>
  new BankError(401, INVALID_TOKEN, why, { 'www-authenticate': `Bearer error="invalid_token", error_description="${why}"` });

const resolved = new WeakMap<FastifyRequest, CatalogEntry>();

/**
 * An onRequest hook: resolves `:slug` to the catalog entry of this bank kind, then refuses everything
 * with 410 when the provider is retired and 503 while the domain clock is inside a declared outage.
 */
export function providerGate(deps: SandboxBankDeps, kind: AdapterKind) {
  return async (req: FastifyRequest): Promise<void> => {
    if (deps.latencyMs !== undefined && deps.latencyMs > 0) await new Promise((r) => setTimeout(r, deps.latencyMs));
    const slug = (req.params as { slug?: unknown }).slug;
    const provider = deps.catalog.all().find((e) => e.adapter === kind && e.bankRef === slug);
    if (provider === undefined) throw new BankError(404, 'not_found', 'No such provider');
    const override = await providersRepository(deps.db).override(provider.id);
    if (override.retiredAt !== null) throw new BankError(410, 'provider_retired', `${provider.name} no longer offers this service`);
    const now = deps.clock.now();
    if (override.outageUntil !== null && override.outageUntil > now) {
      const retryAfterSeconds = Math.ceil((override.outageUntil.getTime() - now.getTime()) / 1000);
      throw new BankError(503, 'service_unavailable', `${provider.name} is temporarily unavailable`, { 'retry-after': String(retryAfterSeconds) });
    }
    resolved.set(req, provider);
  };
}

/** The catalog entry providerGate resolved for this request. */
export function providerOf(req: FastifyRequest): CatalogEntry {
  const provider = resolved.get(req);
  if (provider === undefined) throw new BankError(404, 'not_found', 'No such provider');
  return provider;
}

export interface BankFailure {
  status: number;
  code: string;
  message: string;
  headers: Record<string, string>;
}

/** Turns whatever a handler threw into the bank's answer; bad input is a 400, never a 500. */
export function toBankFailure(err: unknown): BankFailure {
  if (err instanceof BankError) return { status: err.status, code: err.code, message: err.message, headers: err.headers };
  const e = err as { validation?: unknown; statusCode?: unknown; message?: unknown };
  if (e.validation !== undefined) return { status: 400, code: 'invalid_request', message: String(e.message), headers: {} };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, code: 'invalid_request', message: String(e.message), headers: {} };
  }
  return { status: 500, code: 'internal_error', message: 'Something went wrong at the bank', headers: {} };
}

/** Installs an error handler that renders BankFailures in this bank kind's shape. */
export function renderBankErrors(
  app: FastifyInstance,
  render: (f: BankFailure, req: FastifyRequest, reply: FastifyReply) => unknown,
): void {
  app.setErrorHandler((err, req, reply) => {
    const f = toBankFailure(err);
    if (f.status >= 500 && !(err instanceof BankError)) req.log.error({ err }, 'sandbox bank failure');
    return reply.status(f.status).headers(f.headers).send(render(f, req, reply));
  });
}


/** HTTP Basic client authentication (or client_secret_post fields) as client `mooring`. */
export function clientAuthenticated(req: FastifyRequest, secret: string, body?: { client_id?: string; client_secret?: string }): boolean {
  const header = req.headers.authorization;
  if (header !== undefined && header.toLowerCase().startsWith('basic ')) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    try {
      const id = decodeURIComponent(decoded.slice(0, colon));
      const given = decodeURIComponent(decoded.slice(colon + 1));
      return id === SANDBOX_CLIENT_ID && sameSecret(given, secret);
    } catch {
      return false; // malformed percent-encoding: not our client
    }
  }
  return body?.client_id === SANDBOX_CLIENT_ID && body.client_secret !== undefined && sameSecret(body.client_secret, secret);
}

export function bearerToken(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (header === undefined || !header.toLowerCase().startsWith('bearer ')) return null;
  const token = header.slice(7).trim();
  return token === '' ? null : token;
}

/** True when the request carries a non-empty customer-present header (e.g. x-fapi-customer-ip-address). */
export function headerPresent(req: FastifyRequest, name: string): boolean {
  const v = req.headers[name];
  return typeof v === 'string' && v.trim() !== '';
}

/** Parses an ISO 8601 date-time query parameter; a bad one is the caller's 400. */
export function parseDateParam(value: string | undefined, name: string, code = 'invalid_request'): Date | null {
  if (value === undefined || value === '') return null;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new BankError(400, code, `${name} must be an ISO 8601 date-time`);
  return d;
}
