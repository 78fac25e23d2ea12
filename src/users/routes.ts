import { Type } from 'typebox';
import { authOf } from '../oauth/bearer.ts';
import { errorResponses, listOf, pageLinks, pageOf, Pagination } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import { CreateUserBody, User, UserParams } from './schemas.ts';
import type { UsersService } from './service.ts';

export function usersRoutes(app: App, deps: { users: UsersService; publicUrl: string }): void {
  const tags = ['users'];
  const security = (scope: string) => [{ bearer: [scope] }];

  app.post('/users', {
    config: { scopes: ['user:create'] },
    schema: { tags, summary: 'Create a user', security: security('user:create'), body: Type.Optional(CreateUserBody), response: { 201: User, ...errorResponses } },
  }, async (req, reply) => {
    const auth = authOf(req);
    const user = await deps.users.create(auth.clientId, req.body?.clientUserId, [...auth.scopes].join(' '));
    return reply.code(201).send(user);
  });

  app.get('/users', {
    config: { scopes: ['user:read'] },
    schema: { tags, summary: "List the client's users", security: security('user:read'), querystring: Pagination, response: { 200: listOf(User), ...errorResponses } },
  }, async (req) => {
    const page = pageOf(req.query);
    const { users, total } = await deps.users.list(authOf(req).clientId, page);
    return { data: users, links: pageLinks(deps.publicUrl, '/users', page, total), meta: { total } };
  });

  app.get('/users/:userId', {
    config: { scopes: ['user:read'] },
    schema: { tags, summary: 'Get a user', security: security('user:read'), params: UserParams, response: { 200: User, ...errorResponses } },
  }, async (req) => deps.users.get(authOf(req).clientId, req.params.userId));

  app.delete('/users/:userId', {
    config: { scopes: ['user:delete'] },
    schema: {
      tags, summary: "Delete a user with all its connections, accounts, transactions and syncs", security: security('user:delete'),
      params: UserParams, response: { 204: Type.Null(), ...errorResponses },
    },
  }, async (req, reply) => {
    await deps.users.delete(authOf(req).clientId, req.params.userId);
    return reply.code(204).send(null);
  });
}
