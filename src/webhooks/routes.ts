/** Webhook registration (admin) and the client's event log with replay. */
import type { SecretBox } from '../crypto/secrets.ts';
import { Type } from 'typebox';
import type Provider from 'oidc-provider';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { AppError, badRequest, notFound } from '../errors.ts';
import { adminGuard, type AdminThrottle } from '../admin/auth.ts';
import { authOf } from '../oauth/bearer.ts';
import { DateTime, ErrorBody, errorResponses, literals, pageLinks, pageOf, Pagination } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import { webhooksRepository } from './repository.ts';
import { isUuid } from '../ids.ts';
import { newWebhookSecret } from './signing.ts';
import { EVENT_TYPES } from './policy.ts';
import { checkWebhookUrl, type UrlPolicy } from './url-policy.ts';

const WebhookEvent = Type.Object({
  id: Type.String(),
  eventType: literals(EVENT_TYPES),
  userId: Type.String(),
  payload: Type.Record(Type.String(), Type.Unknown()),
  createdAt: DateTime,
  deliveredAt: Type.Union([DateTime, Type.Null()]),
  deliveries: Type.Array(Type.Object({ at: DateTime, status: literals(['delivered', 'failed'] as const), responseCode: Type.Union([Type.Integer(), Type.Null()]), error: Type.Union([Type.String(), Type.Null()]) })),
});

export interface WebhookRoutesDeps {
  db: Db;
  /** Seals and opens the endpoints' signing secrets. */
  secrets: SecretBox;
  oidc: Provider;
  clock: Clock;
  adminToken: string;
  adminThrottle?: AdminThrottle;
  policy: UrlPolicy;
  publicUrl: string;
}

export function webhookRoutes(app: App, deps: WebhookRoutesDeps): void {
  const repo = webhooksRepository(deps.db, deps.secrets);
  const onRequest = adminGuard(deps.adminToken, deps.adminThrottle);
  const ClientParams = Type.Object({ clientId: Type.String({ minLength: 1, maxLength: 200 }) });

  app.put('/admin/clients/:clientId/webhook', {
    onRequest,
    schema: {
      tags: ['webhooks'], security: [{ admin: [] }], summary: "Set an API client's webhook URL; answers the signing secret",
      params: ClientParams,
      body: Type.Object({ url: Type.String({ maxLength: 2000 }), rotateSecret: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      response: { 200: Type.Object({ url: Type.String(), secret: Type.String() }), 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
    },
  }, async (req) => {
    if ((await deps.oidc.Client.find(req.params.clientId)) === undefined) throw notFound('Client');
    const verdict = await checkWebhookUrl(req.body.url, deps.policy);
    if (!verdict.ok) throw badRequest('invalid_webhook_url', verdict.reason, { field: 'url' });
    const existing = await repo.endpoint(req.params.clientId);
    const secret = existing === undefined || req.body.rotateSecret === true ? newWebhookSecret() : existing.secret;
    await repo.setEndpoint(req.params.clientId, req.body.url, secret, deps.clock.now());
    return { url: req.body.url, secret };
  });

  app.delete('/admin/clients/:clientId/webhook', {
    onRequest,
    schema: { tags: ['webhooks'], security: [{ admin: [] }], summary: 'Stop webhook deliveries to a client', params: ClientParams, response: { 204: Type.Null(), 401: ErrorBody, 404: ErrorBody } },
  }, async (req, reply) => {
    if (!(await repo.deleteEndpoint(req.params.clientId))) throw notFound('Webhook');
    return reply.code(204).send(null);
  });

  app.get('/webhook-events', {
    config: { scopes: ['webhooks:read'] },
    schema: {
      tags: ['webhooks'], security: [{ bearer: ['webhooks:read'] }], summary: "The client's event log, newest first, with every delivery attempt",
      querystring: Type.Intersect([Pagination, Type.Object({ eventType: Type.Optional(literals(EVENT_TYPES)) })]),
      response: { 200: Type.Object({ data: Type.Array(WebhookEvent), links: Type.Object({ self: Type.String(), next: Type.Optional(Type.String()), prev: Type.Optional(Type.String()) }), meta: Type.Object({ total: Type.Integer() }) }), ...errorResponses },
    },
  }, async (req) => {
    const page = pageOf(req.query);
    const eventType = req.query.eventType ?? null;
    const { rows, total } = await repo.list(authOf(req).clientId, page.limit, page.offset, eventType);
    return {
      data: rows.map((e) => ({
        id: e.id,
        eventType: e.event_type,
        userId: e.user_id,
        payload: e.payload,
        createdAt: e.created_at.toISOString(),
        deliveredAt: e.delivered_at?.toISOString() ?? null,
        deliveries: e.deliveries.map((d) => ({ at: new Date(d.at).toISOString(), status: d.status, responseCode: d.response_code, error: d.error })),
      })),
      links: pageLinks(deps.publicUrl, '/webhook-events', page, total, eventType === null ? {} : { eventType }),
      meta: { total },
    };
  });

  app.post('/webhook-events/:eventId/replay', {
    config: { scopes: ['webhooks:write'] },
    schema: {
      tags: ['webhooks'], security: [{ bearer: ['webhooks:write'] }], summary: 'Deliver an event again (same event id)',
      params: Type.Object({ eventId: Type.String() }),
      response: { 202: Type.Object({ id: Type.String(), status: Type.Literal('queued') }), 409: ErrorBody, ...errorResponses },
    },
  }, async (req, reply) => {
    const clientId = authOf(req).clientId;
    if (!isUuid(req.params.eventId) || !(await repo.eventExists(clientId, req.params.eventId))) throw notFound('Event');
    if (!(await repo.replay(clientId, req.params.eventId, deps.clock.now()))) {
      throw new AppError(409, 'no_webhook', 'No webhook URL is registered for this client; ask the operator to set one');
    }
    return reply.code(202).send({ id: req.params.eventId, status: 'queued' });
  });
}
