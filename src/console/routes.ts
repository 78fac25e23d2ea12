/**
 * The console's admin API (admin token as a bearer): search, one connection with its timeline,
 * a sync now, and a webhook event delivered again. The console pages use the same service.
 */
import { Type } from 'typebox';
import { adminGuard, type AdminThrottle } from '../admin/auth.ts';
import { badRequest } from '../errors.ts';
import { Connection } from '../connections/schemas.ts';
import { DateTime, ErrorBody, literals } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import { Sync } from '../syncs/schemas.ts';
import { User } from '../users/schemas.ts';
import type { ConsoleService } from './service.ts';
import { decodeCursor, encodeCursor, parseKinds, TIMELINE_DEFAULT_LIMIT, TIMELINE_KINDS, TIMELINE_MAX_LIMIT, type TimelineCursor, type TimelineKind } from './timeline.ts';

const TimelineEntry = Type.Object({
  at: DateTime,
  kind: literals(TIMELINE_KINDS),
  id: Type.String({ description: "The source record's id (sync id, webhook event id, journey uid, …)" }),
  summary: Type.String(),
  detail: Type.Record(Type.String(), Type.Unknown()),
});

const SearchBody = Type.Object({
  data: Type.Object({
    users: Type.Array(Type.Object({ userId: Type.String(), clientId: Type.String(), clientUserId: Type.Union([Type.String(), Type.Null()]), createdAt: DateTime, match: literals(['exact', 'prefix'] as const) })),
    connections: Type.Array(Type.Object({
      connectionId: Type.String(), userId: Type.String(), providerId: Type.String(), providerName: Type.String(),
      state: Type.Union([Type.String(), Type.Null()], { description: 'status:error:extendedStatus as last told to the client' }), match: literals(['exact', 'via_user'] as const),
    })),
    clients: Type.Array(Type.Object({ clientId: Type.String(), name: Type.Union([Type.String(), Type.Null()]), match: literals(['exact', 'prefix'] as const) })),
  }),
});

const ConnectionDetailBody = Type.Object({
  data: Type.Object({
    connection: Connection,
    user: User,
    client: Type.Object({ clientId: Type.String(), name: Type.Union([Type.String(), Type.Null()]) }),
    provider: Type.Object({ id: Type.String(), name: Type.String(), type: Type.String() }),
    timeline: Type.Array(TimelineEntry),
  }),
  links: Type.Object({ self: Type.String(), next: Type.Optional(Type.String()) }),
});

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 429: ErrorBody };

export interface TimelineQuery {
  kinds: TimelineKind[];
  cursor: TimelineCursor | null;
  limit: number;
}

/** A timeline page's query (kind, cursor, limit) checked; bad input is a 400 naming the field. */
export function timelineQuery(q: { kind?: string | undefined; cursor?: string | undefined; limit?: number | undefined }): TimelineQuery {
  const kinds = parseKinds(q.kind);
  if (kinds === null) throw badRequest('invalid_kind', `kind must be one or more of ${TIMELINE_KINDS.join(', ')} (comma-separated)`, { field: 'kind' });
  const cursor = q.cursor === undefined || q.cursor === '' ? null : decodeCursor(q.cursor);
  if (cursor === null && q.cursor !== undefined && q.cursor !== '') throw badRequest('invalid_cursor', 'cursor must be the one a previous page gave', { field: 'cursor' });
  return { kinds, cursor, limit: q.limit ?? TIMELINE_DEFAULT_LIMIT };
}

export function timelinePageUrl(base: string, connectionId: string, q: TimelineQuery, cursor: TimelineCursor | null): string {
  const qs = new URLSearchParams();
  if (q.kinds.length !== TIMELINE_KINDS.length) qs.set('kind', q.kinds.join(','));
  if (q.limit !== TIMELINE_DEFAULT_LIMIT) qs.set('limit', String(q.limit));
  if (cursor !== null) qs.set('cursor', encodeCursor(cursor));
  const s = qs.toString();
  return `${base}/${encodeURIComponent(connectionId)}${s === '' ? '' : `?${s}`}`;
}

export function consoleApiRoutes(app: App, deps: { service: ConsoleService; adminToken: string; throttle?: AdminThrottle; publicUrl: string }): void {
  const onRequest = adminGuard(deps.adminToken, deps.throttle);
  const common = { tags: ['admin'], security: [{ admin: [] }] };

  app.get('/admin/api/search', {
    onRequest,
    schema: {
      ...common, summary: 'Find users (by id or clientUserId), connections (by id) and API clients (by id or name) of every client',
      description: 'Exact id matches first, then prefix matches of clientUserId and client name (client names case-insensitively); at most 20 of each.',
      querystring: Type.Object({ q: Type.String({ maxLength: 200 }) }),
      response: { 200: SearchBody, ...errors },
    },
  }, async (req) => ({ data: await deps.service.search(req.query.q) }));

  app.get('/admin/api/connections/:connectionId', {
    onRequest,
    schema: {
      ...common, summary: 'One connection as its client sees it, with its user, client, provider and timeline (newest first)',
      description:
        `The timeline merges journeys, syncs, status changes, provider calls and webhook events with their delivery attempts. ` +
        `kind filters (comma-separated: ${TIMELINE_KINDS.join(', ')}); links.next carries the cursor of the next page.`,
      params: Type.Object({ connectionId: Type.String({ maxLength: 200 }) }),
      querystring: Type.Object({
        kind: Type.Optional(Type.String({ maxLength: 200 })),
        cursor: Type.Optional(Type.String({ maxLength: 400 })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: TIMELINE_MAX_LIMIT, default: TIMELINE_DEFAULT_LIMIT })),
      }),
      response: { 200: ConnectionDetailBody, ...errors },
    },
  }, async (req) => {
    const q = timelineQuery(req.query);
    const d = await deps.service.connection(req.params.connectionId, q);
    const base = `${deps.publicUrl}/admin/api/connections`;
    return {
      data: {
        connection: d.connection, user: d.user, client: d.client, provider: d.provider,
        timeline: d.timeline.entries.map((e) => ({ at: e.at.toISOString(), kind: e.kind, id: e.id, summary: e.summary, detail: e.detail })),
      },
      links: { self: timelinePageUrl(base, req.params.connectionId, q, q.cursor), ...(d.timeline.next !== null ? { next: timelinePageUrl(base, req.params.connectionId, q, d.timeline.next) } : {}) },
    };
  });

  app.post('/admin/api/connections/:connectionId/sync', {
    onRequest,
    schema: {
      ...common, summary: 'Sync a connection now, unattended (as the scheduler would), within its unattended budget',
      description: 'Over the budget, or while the provider\'s 429 holds, the answer is 429 with Retry-After; a connection whose consent expired or whose provider was removed is a 409.',
      params: Type.Object({ connectionId: Type.String({ maxLength: 200 }) }),
      response: { 200: Type.Object({ data: Type.Object({ status: literals(['ok', 'error'] as const), sync: Sync }) }), 409: ErrorBody, ...errors },
    },
  }, async (req) => ({ data: await deps.service.syncNow(req.params.connectionId) }));

  app.post('/admin/api/webhook-events/:eventId/replay', {
    onRequest,
    schema: {
      ...common, summary: 'Deliver a webhook event again (same event id); the attempt is recorded with the others',
      params: Type.Object({ eventId: Type.String({ maxLength: 200 }) }),
      response: { 202: Type.Object({ id: Type.String(), status: Type.Literal('queued') }), 409: ErrorBody, ...errors },
    },
  }, async (req, reply) => {
    const r = await deps.service.replay(req.params.eventId);
    return reply.code(202).send({ id: r.eventId, status: 'queued' as const });
  });
}
