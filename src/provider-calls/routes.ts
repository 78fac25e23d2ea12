/**
 * The operator's provider call log API (admin bearer token): GET /admin/api/provider-calls and
 * GET /admin/api/providers/:providerId/health.
 */
import { Type } from 'typebox';
import { adminGuard, type AdminThrottle } from '../admin/auth.ts';
import { ErrorBody, literals } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import { PROVIDER_ERROR_KINDS } from '../providers/provider.ts';
import type { ProviderCallsService } from './service.ts';
import { DEFAULT_HEALTH_HOURS, MAX_HEALTH_HOURS } from './service.ts';

export interface ProviderCallsRoutesDeps {
  service: ProviderCallsService;
  adminToken: string;
  throttle?: AdminThrottle;
  publicUrl: string;
}

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const ErrorKind = literals(PROVIDER_ERROR_KINDS);

const ProviderCall = Type.Object({
  id: Type.String({ description: 'Increasing with insertion; with `at`, the order of the log' }),
  at: Type.String({ format: 'date-time', description: 'When the call started (domain time)' }),
  providerId: Type.String(),
  connectionId: Nullable(Type.String()),
  syncId: Nullable(Type.String()),
  journeyId: Nullable(Type.String()),
  method: Type.String(),
  endpoint: Type.String({ description: "Path template of the provider's API, e.g. /accounts/{accountId}/balances" }),
  status: Nullable(Type.Integer({ description: 'HTTP status; null when no answer came (time-out, network)' })),
  latencyMs: Type.Integer(),
  errorKind: Nullable(ErrorKind),
  interactionId: Nullable(Type.String({ description: 'x-fapi-interaction-id, where the protocol has one' })),
});

const ListQuery = Type.Object({
  providerId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  connectionId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
  errorKind: Type.Optional(ErrorKind),
  since: Type.Optional(Type.String({ format: 'date-time' })),
  until: Type.Optional(Type.String({ format: 'date-time' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
}, { additionalProperties: false });

const CallPage = Type.Object({
  data: Type.Array(ProviderCall),
  links: Type.Object({ self: Type.String(), next: Type.Optional(Type.String()) }),
  meta: Type.Object({ limit: Type.Integer(), nextCursor: Nullable(Type.String()) }),
});

const HealthBucket = Type.Object({
  hour: Type.String({ format: 'date-time', description: 'Start of the hour (UTC, domain time)' }),
  syncs: Type.Integer({ description: 'Syncs of this provider that ended in the hour (by their start)' }),
  successes: Type.Integer({ description: 'Of which success or partial' }),
  failures: Type.Record(Type.String(), Type.Integer(), { description: "Failed syncs by the provider's error kind, or by fetch status when Mooring decided without calling it" }),
  calls: Type.Integer(),
  callErrors: Type.Record(Type.String(), Type.Integer(), { description: 'Failed calls by error kind' }),
  p50LatencyMs: Nullable(Type.Integer({ description: 'Estimated from a latency histogram (bucket resolution)' })),
  p95LatencyMs: Nullable(Type.Integer()),
});

const Health = Type.Object({
  data: Type.Array(HealthBucket),
  meta: Type.Object({ providerId: Type.String(), hours: Type.Integer(), from: Type.String({ format: 'date-time' }) }),
});

export function providerCallsRoutes(app: App, deps: ProviderCallsRoutesDeps): void {
  const guard = adminGuard(deps.adminToken, deps.throttle);
  const security = [{ admin: [] }];

  app.get('/admin/api/provider-calls', {
    onRequest: guard,
    schema: {
      tags: ['admin'], security, summary: 'Calls Mooring made to providers, newest first (keyset pagination with cursor)',
      querystring: ListQuery, response: { 200: CallPage, 400: ErrorBody, 401: ErrorBody },
    },
  }, async (req) => {
    const q = req.query;
    const limit = q.limit ?? 50;
    const { calls, next } = await deps.service.list({
      ...(q.providerId !== undefined ? { providerId: q.providerId } : {}),
      ...(q.connectionId !== undefined ? { connectionId: q.connectionId } : {}),
      ...(q.status !== undefined ? { status: q.status } : {}),
      ...(q.errorKind !== undefined ? { errorKind: q.errorKind } : {}),
      ...(q.since !== undefined ? { since: new Date(q.since) } : {}),
      ...(q.until !== undefined ? { until: new Date(q.until) } : {}),
    }, q.cursor, limit);
    const params = (cursor: string | undefined): string => {
      const kept = Object.entries({ ...q, limit, cursor }).filter((e): e is [string, string | number] => e[1] !== undefined);
      return new URLSearchParams(kept.map(([k, v]): [string, string] => [k, String(v)])).toString();
    };
    return {
      data: calls.map((c) => ({ ...c, at: c.at.toISOString() })),
      links: { self: `${deps.publicUrl}/admin/api/provider-calls?${params(q.cursor)}`, ...(next === null ? {} : { next: `${deps.publicUrl}/admin/api/provider-calls?${params(next)}` }) },
      meta: { limit, nextCursor: next },
    };
  });

  app.get('/admin/api/providers/:providerId/health', {
    onRequest: guard,
    schema: {
      tags: ['admin'], security, summary: "A provider's syncs, calls and call latency, hour by hour (from the hourly rollup)",
      params: Type.Object({ providerId: Type.String({ minLength: 1, maxLength: 200 }) }),
      querystring: Type.Object({ hours: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_HEALTH_HOURS, default: DEFAULT_HEALTH_HOURS })) }, { additionalProperties: false }),
      response: { 200: Health, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
    },
  }, async (req) => {
    const hours = req.query.hours ?? DEFAULT_HEALTH_HOURS;
    const { from, buckets } = await deps.service.health(req.params.providerId, hours);
    return { data: buckets, meta: { providerId: req.params.providerId, hours, from: from.toISOString() } };
  });
}
