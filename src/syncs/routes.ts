import { Type } from 'typebox';
import { authOf } from '../oauth/bearer.ts';
import { dataOf, errorResponses, listOf, literals, pageLinks, pageOf, Pagination } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import type { ConnectionsService } from '../connections/service.ts';
import { ConnectionParams } from '../connections/schemas.ts';
import type { UsersService } from '../users/service.ts';
import { Sync } from './schemas.ts';
import type { SyncsService } from './service.ts';

export function resourceSyncRoutes(app: App, deps: { syncs: SyncsService; connections: ConnectionsService }): void {
  app.post('/v2.0/sync/:connectionId', {
    config: { scopes: ['accounts:read', 'accounts:write:all'], requiresUser: true },
    schema: {
      tags: ['syncs'],
      summary: 'Sync a connection now and answer when the sync has run',
      description:
        'With customerIpAddress the user is present: the sync is attended and does not use the unattended budget. ' +
        "While the provider's last 429 holds (the connection's rateLimitedUntil), nothing is sent to it: the answer is 429 " +
        '`provider_rate_limited` with Retry-After and `details.retryAfter`, attended or not. A sync that meets a 429 is recorded ' +
        'with fetchStatus `rate-limited` and answers `status: "error"`.',
      security: [{ bearer: ['accounts:read', 'accounts:write:all'] }],
      params: Type.Object({ connectionId: Type.String() }),
      body: Type.Optional(Type.Object({
        customerIpAddress: Type.Optional(Type.Union([Type.String({ format: 'ipv4' }), Type.String({ format: 'ipv6' })], { description: "The user's IP address: the user is present" })),
        customerLastLoggedTime: Type.Optional(Type.String({ format: 'date-time' })),
      }, { additionalProperties: false })),
      response: {
        200: Type.Object({ data: Type.Object({ status: literals(['ok', 'error'] as const), syncId: Type.Union([Type.String(), Type.Null()]) }) }),
        ...errorResponses,
      },
    },
  }, async (req) => {
    const auth = authOf(req);
    const userId = auth.userId ?? '';
    await deps.connections.findOwnedOrThrow(userId, req.params.connectionId);
    return { data: await deps.syncs.requestSync(req.params.connectionId, req.body?.customerIpAddress) };
  });
}

/** A user's sync history (identity service), as getConnectionSyncs and getSync call it. */
export function syncHistoryRoutes(app: App, deps: { users: UsersService; connections: ConnectionsService; syncs: SyncsService; publicUrl: string }): void {
  const security = (scope: string) => [{ bearer: [scope] }];
  app.get('/users/:userId/connections/:connectionId/syncs', {
    config: { scopes: ['user:read'] },
    schema: {
      tags: ['syncs'], summary: "A connection's sync attempts, newest first", security: security('user:read'),
      params: ConnectionParams, querystring: Pagination, response: { 200: listOf(Sync), ...errorResponses },
    },
  }, async (req) => {
    const { userId, connectionId } = req.params;
    await deps.users.assertOwned(authOf(req).clientId, userId);
    await deps.connections.findOwnedOrThrow(userId, connectionId);
    const page = pageOf(req.query);
    const { syncs, total } = await deps.syncs.listForConnection(connectionId, page);
    return { data: syncs, links: pageLinks(deps.publicUrl, `/users/${userId}/connections/${connectionId}/syncs`, page, total), meta: { total } };
  });

  app.get('/users/:userId/syncs/:syncId', {
    config: { scopes: ['user:read'] },
    schema: {
      tags: ['syncs'], summary: 'Get one sync', security: security('user:read'),
      params: Type.Object({ userId: Type.String(), syncId: Type.String() }), response: { 200: dataOf(Sync), ...errorResponses },
    },
  }, async (req) => {
    await deps.users.assertOwned(authOf(req).clientId, req.params.userId);
    return { data: await deps.syncs.get(req.params.userId, req.params.syncId) };
  });
}
