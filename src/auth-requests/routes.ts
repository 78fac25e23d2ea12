import { Type } from 'typebox';
import { authOf } from '../oauth/bearer.ts';
import { dataOf, DateTime, ErrorBody, errorResponses, literals, pageLinks, pageOf, Pagination } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import { AUTH_REQUEST_STATUSES } from './repository.ts';
import type { AuthRequestsService } from './service.ts';

const AuthRequest = Type.Object({
  id: Type.String(),
  redirectUri: Type.String(),
  createdAt: DateTime,
  completedAt: Type.Optional(DateTime),
  bankId: Type.String(),
  userId: Type.Optional(Type.String()),
  connectionId: Type.Optional(Type.String()),
  scope: Type.String(),
  status: literals(AUTH_REQUEST_STATUSES),
  error: Type.Optional(Type.String()),
  redirectParams: Type.Object({ authUrl: Type.String(), state: Type.String() }),
}, { $id: 'AuthRequest' });

const CreateBody = Type.Object({
  redirectUri: Type.String({ minLength: 1, maxLength: 2000 }),
  scope: Type.String({ minLength: 1, maxLength: 1000 }),
  userId: Type.Optional(Type.String({ maxLength: 100 })),
  connectionId: Type.Optional(Type.String({ maxLength: 200 })),
  expirationDateTime: Type.Optional(Type.String()),
  transactionFromDateTime: Type.Optional(Type.String()),
  permissions: Type.Optional(Type.Array(Type.String())),
  categorisationType: Type.Optional(Type.String()),
  sync: Type.Optional(Type.Object({ enableAsync: Type.Optional(Type.Boolean()) })),
  customerIpAddress: Type.Optional(Type.String()),
  customerLastLoggedTime: Type.Optional(Type.String()),
});

const AuthParamsBody = Type.Object({
  authParams: Type.Object({
    code: Type.Optional(Type.String({ maxLength: 2000 })),
    state: Type.Optional(Type.String({ maxLength: 2000 })),
    id_token: Type.Optional(Type.String()),
    error: Type.Optional(Type.String({ maxLength: 200 })),
    error_description: Type.Optional(Type.String({ maxLength: 2000 })),
  }),
});

export function authRequestRoutes(app: App, deps: { authRequests: AuthRequestsService; publicUrl: string }): void {
  const tags = ['auth requests'];
  const Id = Type.Object({ id: Type.String() });

  app.post('/auth-requests', {
    config: { scopes: ['auth_requests:write'] },
    schema: { tags, security: [{ bearer: ['auth_requests:write'] }], summary: 'Start a journey server-side: answers the URL to send the user to', body: CreateBody, response: { 201: dataOf(AuthRequest), ...errorResponses } },
  }, async (req, reply) => reply.code(201).send({ data: await deps.authRequests.create(authOf(req).clientId, req.body) }));

  app.patch('/auth-requests/:id', {
    config: { scopes: ['auth_requests:write'] },
    schema: { tags, security: [{ bearer: ['auth_requests:write'] }], summary: "Complete a journey with the callback's parameters; answers the connection", params: Id, body: AuthParamsBody, response: { 200: dataOf(AuthRequest), 409: ErrorBody, ...errorResponses } },
  }, async (req) => ({ data: await deps.authRequests.complete(authOf(req).clientId, req.params.id, req.body.authParams) }));

  app.get('/auth-requests', {
    config: { scopes: ['auth_requests:read'] },
    schema: {
      tags, security: [{ bearer: ['auth_requests:read'] }], summary: "The client's auth requests, newest first", querystring: Pagination,
      response: { 200: Type.Object({ data: Type.Array(AuthRequest), links: Type.Object({ self: Type.String(), next: Type.Optional(Type.String()), prev: Type.Optional(Type.String()) }), meta: Type.Object({ total: Type.Integer() }) }), ...errorResponses },
    },
  }, async (req) => {
    const page = pageOf(req.query);
    const { data, total } = await deps.authRequests.list(authOf(req).clientId, page);
    return { data, links: pageLinks(deps.publicUrl, '/auth-requests', page, total), meta: { total } };
  });

  app.get('/auth-requests/:id', {
    config: { scopes: ['auth_requests:read'] },
    schema: { tags, security: [{ bearer: ['auth_requests:read'] }], summary: 'Get an auth request', params: Id, response: { 200: dataOf(AuthRequest), ...errorResponses } },
  }, async (req) => ({ data: await deps.authRequests.get(authOf(req).clientId, req.params.id) }));
}
