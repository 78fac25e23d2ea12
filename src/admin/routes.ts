/**
 * The operator's sign-in and sign-out (session.ts) and the overview API under /admin: providers and
 * their health, connections by last sync outcome, sync and webhook backlogs, and the registered API
 * clients. The console's pages (console/pages-routes.ts) show them; the API takes the token as a bearer.
 */
import type { FastifyReply } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { ErrorBody } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import type { Catalog } from '../providers/catalog.ts';
import { availability, HEALTH_WINDOW_MS } from '../providers/health.ts';
import { providersRepository } from '../providers/repository.ts';
import { renderPage } from '../web/html.ts';
import { adminGuard, isAdminToken, type AdminThrottle } from './auth.ts';
import { adminOverviewRepository } from './repository.ts';
import { CSRF_FIELD, type AdminSessions } from './session.ts';

export interface AdminRoutesDeps {
  db: Db;
  catalog: Catalog;
  clock: Clock;
  adminToken: string;
  sessions: AdminSessions;
  throttle?: AdminThrottle;
}

const Overview = Type.Object({
  now: Type.String(),
  providers: Type.Array(Type.Object({
    id: Type.String(), name: Type.String(), type: Type.String(), sync: Type.String(),
    connections: Type.Integer(), syncsLastHour: Type.Integer(), failuresLastHour: Type.Integer(),
    retired: Type.Boolean(), outageUntil: Type.Union([Type.String(), Type.Null()]),
  })),
  attention: Type.Array(Type.Object({
    state: Type.String({ description: 'status:error:extendedStatus, as last told to the client' }),
    status: Type.String(), error: Type.Union([Type.String(), Type.Null()]), extendedStatus: Type.Union([Type.String(), Type.Null()]),
    providerId: Type.String(), providerName: Type.String(), connections: Type.Integer(),
  }), { description: 'Connections in error or never, grouped by state and provider, largest groups first' }),
  connections: Type.Object({ total: Type.Integer(), byLastFetchStatus: Type.Record(Type.String(), Type.Integer()), consentExpired: Type.Integer() }),
  syncs: Type.Object({ queued: Type.Integer(), running: Type.Integer() }),
  webhooks: Type.Object({ pending: Type.Integer(), abandoned: Type.Integer() }),
  clients: Type.Array(Type.Object({ clientId: Type.String(), name: Type.String(), users: Type.Integer(), webhookUrl: Type.Union([Type.String(), Type.Null()]) })),
});
export type OverviewJson = Static<typeof Overview>;

/** The overview's figures (the console's front page and GET /admin/api/overview). */
export function adminOverview(deps: Pick<AdminRoutesDeps, 'db' | 'catalog' | 'clock'>): () => Promise<OverviewJson> {
  return async function overview(): Promise<OverviewJson> {
    const now = deps.clock.now();
    const since = new Date(now.getTime() - HEALTH_WINDOW_MS);
    const overviewCounts = adminOverviewRepository(deps.db);
    const [providers, connectionsPerProvider, byStatus, expired, syncStates, hooks, clients, notOk] = await Promise.all([
      providersRepository(deps.db).healthCounts(deps.catalog.all().map((e) => e.id), since),
      overviewCounts.connectionsPerProvider(),
      overviewCounts.connectionsByLastFetchStatus(),
      overviewCounts.connectionsWithConsentExpired(now),
      overviewCounts.unfinishedSyncsByState(),
      overviewCounts.webhookBacklog(),
      overviewCounts.clients(),
      overviewCounts.connectionsNotOk(),
    ]);
    const byId = new Map(providers.map((p) => [p.providerId, p]));
    return {
      now: now.toISOString(),
      providers: deps.catalog.all().map((e) => {
        const p = byId.get(e.id);
        const attempts = p?.attempts ?? 0;
        const successes = p?.successes ?? 0;
        const retired = p?.retiredAt != null;
        const outageUntil = p?.outageUntil ?? null;
        return {
          id: e.id, name: e.name, type: e.type,
          sync: availability({ retired, outageUntil, attempts, successes }, now),
          connections: connectionsPerProvider.get(e.id) ?? 0, syncsLastHour: attempts, failuresLastHour: attempts - successes,
          retired, outageUntil: outageUntil?.toISOString() ?? null,
        };
      }),
      attention: notOk.map((g) => {
        const [status = '', error = '', ext = ''] = g.state.split(':');
        return {
          state: g.state, status, error: error === '' ? null : error, extendedStatus: ext === '' ? null : ext,
          providerId: g.provider_id, providerName: deps.catalog.get(g.provider_id)?.name ?? 'Unknown provider', connections: g.n,
        };
      }),
      connections: {
        total: byStatus.reduce((a, r) => a + r.n, 0),
        byLastFetchStatus: Object.fromEntries(byStatus.map((r) => [r.status ?? 'never-synced', r.n])),
        consentExpired: expired,
      },
      syncs: {
        queued: syncStates.find((r) => r.state === 'queued')?.n ?? 0,
        running: syncStates.find((r) => r.state === 'running')?.n ?? 0,
      },
      webhooks: hooks,
      clients: clients.map((c) => ({ clientId: c.id, name: c.name ?? c.id, users: c.users, webhookUrl: c.url })),
    };
  };
}

export function adminRoutes(app: App, deps: AdminRoutesDeps): void {
  const guard = adminGuard(deps.adminToken, deps.throttle);
  const overview = adminOverview(deps);
  const html = (reply: FastifyReply, body: string, status = 200): FastifyReply => reply.code(status).type('text/html; charset=utf-8').send(body);

  app.post('/admin/login', { schema: { hide: true, body: Type.Object({ token: Type.String({ maxLength: 1000 }) }) } }, async (req, reply) => {
    const wait = deps.throttle?.retryAfterSeconds(req.ip) ?? null;
    if (wait !== null) {
      return html(reply.header('retry-after', String(wait)), renderPage({ title: 'Operator sign-in', body: `<p class="error">Too many wrong tokens from this address. Try again in ${wait} seconds.</p>` }), 429);
    }
    if (!isAdminToken(deps.adminToken, req.body.token)) {
      deps.throttle?.recordFailure(req.ip);
      return html(reply, renderPage({ title: 'Operator sign-in', body: '<p class="error">That is not the admin token.</p><p><a href="/admin">Try again</a></p>' }), 401);
    }
    return reply.header('set-cookie', await deps.sessions.start()).redirect('/admin', 303);
  });

  app.post('/admin/logout', { schema: { hide: true, body: Type.Optional(Type.Object({ [CSRF_FIELD]: Type.Optional(Type.String({ maxLength: 200 })) })) } }, async (req, reply) => {
    const session = await deps.sessions.current(req);
    if (session !== null && !deps.sessions.csrfMatches(session.id, req.body?.[CSRF_FIELD])) {
      return html(reply, renderPage({ title: 'Request refused', body: '<p class="error">This form did not come from your console session, so Mooring did not act on it.</p><p><a href="/admin">Back to the console</a></p>' }), 403);
    }
    return reply.header('set-cookie', await deps.sessions.end(req)).redirect('/admin', 303);
  });

  app.get('/admin/api/overview', {
    onRequest: guard,
    schema: { tags: ['admin'], security: [{ admin: [] }], summary: 'Providers, connections, backlogs and clients at a glance', response: { 200: Overview, 401: ErrorBody } },
  }, async () => overview());
}
