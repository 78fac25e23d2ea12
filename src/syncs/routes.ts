import { Type } from 'typebox';
import { authOf } from '../oauth/bearer.ts';
import { errorResponses, literals } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import type { ConnectionsService } from '../connections/service.ts';
import type { SyncsService } from './service.ts';

export function resourceSyncRoutes(app: App, deps: { syncs: SyncsService; connections: ConnectionsService }): void {
  app.post('/v2.0/sync/:connectionId', {
    config: { scopes: ['accounts:read', 'accounts:write:all'], requiresUser: true },
    schema: {
      tags: ['syncs'],
      summary: 'Sync a connection now and answer when the sync has run',
      description: 'With customerIpAddress the user is present: the sync is attended and does not use the unattended budget.',
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
