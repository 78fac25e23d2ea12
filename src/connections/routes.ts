import { Type } from 'typebox';
import { authOf } from '../oauth/bearer.ts';
import { dataOf, errorResponses } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import type { UsersService } from '../users/service.ts';
import { Connection, ConnectionParams, PatchConnectionBody } from './schemas.ts';
import type { ConnectionsService } from './service.ts';

export interface ConnectionRoutesDeps {
  users: UsersService;
  connections: ConnectionsService;
  publicUrl: string;
}

export function connectionsRoutes(app: App, deps: ConnectionRoutesDeps): void {
  const tags = ['connections'];
  const security = (scope: string) => [{ bearer: [scope] }];

  app.get('/users/:userId/connections', {
    config: { scopes: ['user:read'] },
    schema: {
      tags, summary: "List a user's connections with status, error, freshness, expiry and remediation", security: security('user:read'),
      params: Type.Object({ userId: Type.String() }),
      response: { 200: Type.Object({ data: Type.Array(Connection), meta: Type.Object({}, { additionalProperties: true }) }), ...errorResponses },
    },
  }, async (req) => {
    const { clientId } = authOf(req);
    const data = await deps.connections.listForClient(clientId, req.params.userId);
    // Ownership was part of the query; only an empty answer needs telling "no connections" from "no such user".
    if (data.length === 0) await deps.users.assertOwned(clientId, req.params.userId);
    return { data, meta: {} };
  });

  app.get('/users/:userId/connections/:connectionId', {
    config: { scopes: ['user:read'] },
    schema: { tags, summary: 'Get one connection', security: security('user:read'), params: ConnectionParams, response: { 200: dataOf(Connection), ...errorResponses } },
  }, async (req) => {
    await deps.users.assertOwned(authOf(req).clientId, req.params.userId);
    return { data: await deps.connections.get(req.params.userId, req.params.connectionId) };
  });

  for (const path of ['/users/:userId/connection/:connectionId', '/users/:userId/connections/:connectionId']) {
    app.delete(path, {
      config: { scopes: ['user:delete'] },
      schema: {
        tags, summary: "Delete a connection, its accounts and transactions, and revoke its provider grant", security: security('user:delete'),
        params: ConnectionParams, response: { 204: Type.Null(), ...errorResponses },
      },
    }, async (req, reply) => {
      await deps.users.assertOwned(authOf(req).clientId, req.params.userId);
      await deps.connections.delete(req.params.userId, req.params.connectionId);
      return reply.code(204).send(null);
    });
  }

  app.patch('/users/:userId/connections/:connectionId', {
    config: { scopes: ['user:update'] },
    schema: {
      tags, summary: "Renew the user's consent to the client (expiresAt at most 90 days ahead)", security: security('user:update'),
      params: ConnectionParams, body: PatchConnectionBody, response: { 204: Type.Null(), ...errorResponses },
    },
  }, async (req, reply) => {
    await deps.users.assertOwned(authOf(req).clientId, req.params.userId);
    await deps.connections.renewConsent(req.params.userId, req.params.connectionId, req.body.expiresAt);
    return reply.code(204).send(null);
  });
}
