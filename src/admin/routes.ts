/**
 * The operator's page and API under /admin: providers and their health, connections by last sync
 * outcome, sync and webhook backlogs, and the registered API clients. The page signs in with the
 * admin token into a server-side session (the HttpOnly cookie holds a random id, the database only
 * its hash); the session lapses when idle and ends at sign-out. The API takes the token as a bearer.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { ErrorBody } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import type { Catalog } from '../providers/catalog.ts';
import { availability, HEALTH_WINDOW_MS } from '../providers/health.ts';
import { providersRepository } from '../providers/repository.ts';
import { DAY_MS, HOUR_MS } from '../time.ts';
import { escapeHtml, renderPage } from '../web/html.ts';
import { adminGuard, isAdminToken, type AdminThrottle } from './auth.ts';
import { adminOverviewRepository, adminSessionsRepository } from './repository.ts';

const COOKIE = 'mooring_admin';
/** A session ends this long after it was created, however active. */
const SESSION_ABSOLUTE_MS = 7 * DAY_MS;
const hashId = (id: string): string => createHash('sha256').update(id).digest('base64url');

export interface AdminRoutesDeps {
  db: Db;
  catalog: Catalog;
  clock: Clock;
  adminToken: string;
  secureCookies: boolean;
  throttle?: AdminThrottle;
  /** An idle session ends after this long. */
  sessionIdleMs?: number;
  /** Real time for sessions (a security timer, not the domain clock); tests inject it. */
  securityNow?: () => number;
}

const Overview = Type.Object({
  now: Type.String(),
  providers: Type.Array(Type.Object({
    id: Type.String(), name: Type.String(), type: Type.String(), sync: Type.String(),
    connections: Type.Integer(), syncsLastHour: Type.Integer(), failuresLastHour: Type.Integer(),
    retired: Type.Boolean(), outageUntil: Type.Union([Type.String(), Type.Null()]),
  })),
  connections: Type.Object({ total: Type.Integer(), byLastFetchStatus: Type.Record(Type.String(), Type.Integer()), consentExpired: Type.Integer() }),
  syncs: Type.Object({ queued: Type.Integer(), running: Type.Integer() }),
  webhooks: Type.Object({ pending: Type.Integer(), abandoned: Type.Integer() }),
  clients: Type.Array(Type.Object({ clientId: Type.String(), name: Type.String(), users: Type.Integer(), webhookUrl: Type.Union([Type.String(), Type.Null()]) })),
});
type OverviewJson = Static<typeof Overview>;

export function adminRoutes(app: App, deps: AdminRoutesDeps): void {
  const guard = adminGuard(deps.adminToken, deps.throttle);
  const sessions = adminSessionsRepository(deps.db);
  const realNow = (): Date => new Date((deps.securityNow ?? Date.now)());
  const idleMs = deps.sessionIdleMs ?? 12 * HOUR_MS;
  const sessionId = (req: FastifyRequest): string | null => {
    const cookie = (req.headers.cookie ?? '').split(';').map((c) => c.trim()).find((c) => c.startsWith(`${COOKIE}=`));
    const value = cookie?.slice(COOKIE.length + 1) ?? '';
    return /^[A-Za-z0-9_-]{43}$/.test(value) ? value : null;
  };
  const signedIn = async (req: FastifyRequest): Promise<boolean> => {
    const id = sessionId(req);
    if (id === null) return false;
    const now = realNow();
    return sessions.touch(hashId(id), now, new Date(now.getTime() + idleMs), new Date(now.getTime() - SESSION_ABSOLUTE_MS));
  };
  const cookie = (value: string, maxAgeSeconds: number): string =>
    `${COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=${maxAgeSeconds}${deps.secureCookies ? '; Secure' : ''}`;

  async function overview(): Promise<OverviewJson> {
    const now = deps.clock.now();
    const since = new Date(now.getTime() - HEALTH_WINDOW_MS);
    const overviewCounts = adminOverviewRepository(deps.db);
    const [providers, connectionsPerProvider, byStatus, expired, syncStates, hooks, clients] = await Promise.all([
      providersRepository(deps.db).healthCounts(deps.catalog.all().map((e) => e.id), since),
      overviewCounts.connectionsPerProvider(),
      overviewCounts.connectionsByLastFetchStatus(),
      overviewCounts.connectionsWithConsentExpired(now),
      overviewCounts.unfinishedSyncsByState(),
      overviewCounts.webhookBacklog(),
      overviewCounts.clients(),
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
  }

  const html = (reply: FastifyReply, body: string, status = 200): FastifyReply => reply.code(status).type('text/html; charset=utf-8').send(body);
  const hidden = { schema: { hide: true } };

  app.get('/admin', hidden, async (req, reply) => {
    if (!(await signedIn(req))) {
      return html(reply, renderPage({
        title: 'Operator sign-in',
        body: `<form method="post" action="/admin/login"><label for="t">Admin token</label><input id="t" type="password" name="token" autocomplete="off"><button class="primary" type="submit">Sign in</button></form>
<p class="muted">The token is MOORING_ADMIN_TOKEN, or the one printed at first start and kept in the data directory.</p>`,
      }));
    }
    const o = await overview();
    const rows = o.providers.map((p) => `<tr><td>${escapeHtml(p.name)}</td><td>${escapeHtml(p.type)}</td><td>${escapeHtml(p.sync)}</td><td>${p.connections}</td><td>${p.syncsLastHour}</td><td>${p.failuresLastHour}</td></tr>`).join('');
    const clients = o.clients.map((c) => `<tr><td>${escapeHtml(c.name)}</td><td><code>${escapeHtml(c.clientId)}</code></td><td>${c.users}</td><td>${escapeHtml(c.webhookUrl ?? '—')}</td></tr>`).join('');
    const statuses = Object.entries(o.connections.byLastFetchStatus).map(([k, v]) => `${escapeHtml(k)}: ${v}`).join(', ');
    return html(reply, renderPage({
      title: 'Mooring operations',
      body: `<p class="muted">Domain time ${escapeHtml(o.now)}</p>
<h2>Providers</h2><table><tr><th>Provider</th><th>Type</th><th>Sync health</th><th>Connections</th><th>Syncs (1 h)</th><th>Failures (1 h)</th></tr>${rows}</table>
<h2>Connections</h2><p>${o.connections.total} in all; by last sync: ${statuses || 'none yet'}; consent expired: ${o.connections.consentExpired}</p>
<h2>Work in flight</h2><p>Syncs queued: ${o.syncs.queued}, running: ${o.syncs.running}. Webhook events awaiting delivery: ${o.webhooks.pending}, abandoned: ${o.webhooks.abandoned}.</p>
<h2>API clients</h2><table><tr><th>Name</th><th>client_id</th><th>Users</th><th>Webhook</th></tr>${clients}</table>
<form method="post" action="/admin/logout"><button class="secondary" type="submit">Sign out</button></form>`,
    }));
  });

  app.post('/admin/login', { schema: { hide: true, body: Type.Object({ token: Type.String({ maxLength: 1000 }) }) } }, async (req, reply) => {
    const wait = deps.throttle?.retryAfterSeconds(req.ip) ?? null;
    if (wait !== null) {
      return html(reply.header('retry-after', String(wait)), renderPage({ title: 'Operator sign-in', body: `<p class="error">Too many wrong tokens from this address. Try again in ${wait} seconds.</p>` }), 429);
    }
    if (!isAdminToken(deps.adminToken, req.body.token)) {
      deps.throttle?.recordFailure(req.ip);
      return html(reply, renderPage({ title: 'Operator sign-in', body: '<p class="error">That is not the admin token.</p><p><a href="/admin">Try again</a></p>' }), 401);
    }
    const id = randomBytes(32).toString('base64url');
    const now = realNow();
    await sessions.create(hashId(id), now, new Date(now.getTime() + idleMs));
    await sessions.purgeExpired(now);
    return reply.header('set-cookie', cookie(id, Math.floor(SESSION_ABSOLUTE_MS / 1000))).redirect('/admin', 303);
  });

  app.post('/admin/logout', hidden, async (req, reply) => {
    const id = sessionId(req);
    if (id !== null) await sessions.remove(hashId(id));
    return reply.header('set-cookie', cookie('', 0)).redirect('/admin', 303);
  });

  app.get('/admin/api/overview', {
    onRequest: guard,
    schema: { tags: ['admin'], security: [{ admin: [] }], summary: 'Providers, connections, backlogs and clients at a glance', response: { 200: Overview, 401: ErrorBody } },
  }, async () => overview());
}
