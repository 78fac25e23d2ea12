/**
 * The console's pages under /admin, signed in by the admin session cookie: overview, search,
 * error groups, a connection (timeline, actions, sandbox controls), a provider and a client.
 * A page asked for without a session sends the browser to the sign-in page; every POST needs the
 * session's CSRF token (and the same-origin check of http/browser-safety.ts) and otherwise changes nothing.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../errors.ts';
import type { App } from '../http/types.ts';
import type { Catalog } from '../providers/catalog.ts';
import type { OverviewJson } from '../admin/routes.ts';
import { CSRF_FIELD, type AdminSessions } from '../admin/session.ts';
import type { Db } from '../db/db.ts';
import { isConnectionId } from '../ids.ts';
import { HOUR_MS } from '../time.ts';
import { renderConsolePage } from './layout.ts';
import { clientPage, connectionPage, errorGroupPage, isNotice, overviewPage, providerPage, searchPage, signInPage, type NoticeCode, type ProviderPageInput } from './pages.ts';
import { consoleRepository } from './repository.ts';
import { timelinePageUrl, timelineQuery } from './routes.ts';
import type { ConsoleService } from './service.ts';
import { TIMELINE_MAX_LIMIT } from './timeline.ts';

/** Connections per page of an error group. */
const GROUP_PAGE = 100;
export const HEALTH_DAYS = 7;

export interface ConsoleSandbox {
  usernames: readonly string[];
  switchBehaviour(connectionId: string, username: string): Promise<boolean>;
  advanceClock(advance: string): Promise<unknown>;
  runDue(): Promise<unknown>;
}

export interface ConsolePageDeps {
  db: Db;
  catalog: Catalog;
  service: ConsoleService;
  sessions: AdminSessions;
  overview(): Promise<OverviewJson>;
  /** Hourly health buckets of a provider over the last `hours` hours, oldest first. */
  providerHealth(providerId: string, hours: number): Promise<ProviderPageInput['buckets']>;
  now(): Date;
  /** Null outside sandbox mode. */
  sandbox: ConsoleSandbox | null;
  /** Whether a client has a webhook URL (replay needs one). */
  hasWebhook(clientId: string): Promise<boolean>;
}

const Csrf = Type.Optional(Type.String({ maxLength: 200 }));
const Back = Type.Optional(Type.String({ maxLength: 200 }));

export function consolePageRoutes(app: App, deps: ConsolePageDeps): void {
  const repo = consoleRepository(deps.db);
  const hidden = { hide: true };
  const html = (reply: FastifyReply, body: string, status = 200): FastifyReply => reply.code(status).type('text/html; charset=utf-8').send(body);
  const providerName = (id: string): string => deps.catalog.get(id)?.name ?? 'Unknown provider';
  const toSignIn = (reply: FastifyReply): FastifyReply => reply.redirect('/admin', 303);
  const connectionUrl = (id: string, notice?: NoticeCode): string => `/admin/connections/${encodeURIComponent(id)}${notice === undefined ? '' : `?notice=${notice}`}`;
  const refused = (reply: FastifyReply): FastifyReply => html(reply, renderConsolePage({
    title: 'Request refused', csrf: null,
    body: '<p class="error">This form did not come from your console session, so Mooring did not act on it.</p><p><a href="/admin">Back to the console</a></p>',
  }), 403);
  const notFoundPage = (reply: FastifyReply, what: string, csrf: string): FastifyReply =>
    html(reply, renderConsolePage({ title: `${what} not found`, csrf, body: `<p>There is no such ${what.toLowerCase()}.</p>` }), 404);

  /** The session of a console POST with its CSRF token; otherwise the answer has been sent (null). */
  async function postSession(req: FastifyRequest, reply: FastifyReply, token: string | undefined): Promise<string | null> {
    const session = await deps.sessions.current(req);
    if (session === null) {
      toSignIn(reply);
      return null;
    }
    if (!deps.sessions.csrfMatches(session.id, token)) {
      refused(reply);
      return null;
    }
    return session.csrf;
  }

  app.get('/admin', { schema: hidden }, async (req, reply) => {
    const session = await deps.sessions.current(req);
    if (session === null) return html(reply, signInPage());
    return html(reply, overviewPage(await deps.overview(), session.csrf));
  });

  app.get('/admin/search', { schema: { ...hidden, querystring: Type.Object({ q: Type.Optional(Type.String({ maxLength: 1000 })) }) } }, async (req, reply) => {
    const session = await deps.sessions.current(req);
    if (session === null) return toSignIn(reply);
    const q = req.query.q ?? '';
    try {
      return html(reply, searchPage(q.trim(), await deps.service.search(q), null, session.csrf));
    } catch (err) {
      if (err instanceof AppError && err.statusCode === 400) return html(reply, searchPage(q, null, err.message, session.csrf), 400);
      throw err;
    }
  });

  app.get('/admin/errors', {
    schema: { ...hidden, querystring: Type.Object({ state: Type.String({ maxLength: 200 }), provider: Type.String({ maxLength: 200 }), after: Type.Optional(Type.String({ maxLength: 200 })) }) },
  }, async (req, reply) => {
    const session = await deps.sessions.current(req);
    if (session === null) return toSignIn(reply);
    const { state, provider } = req.query;
    const members = await repo.notOkGroupMembers(state, provider, req.query.after ?? '', GROUP_PAGE + 1);
    const shown = members.slice(0, GROUP_PAGE);
    const next = members.length > GROUP_PAGE ? (shown[shown.length - 1]?.id ?? null) : null;
    return html(reply, errorGroupPage(state, provider, providerName(provider), shown, next, session.csrf));
  });

  app.get('/admin/connections/:connectionId', {
    schema: {
      ...hidden, params: Type.Object({ connectionId: Type.String({ maxLength: 200 }) }),
      querystring: Type.Object({
        kind: Type.Optional(Type.String({ maxLength: 200 })), cursor: Type.Optional(Type.String({ maxLength: 400 })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: TIMELINE_MAX_LIMIT })), notice: Type.Optional(Type.String({ maxLength: 50 })),
      }),
    },
  }, async (req, reply) => {
    const session = await deps.sessions.current(req);
    if (session === null) return toSignIn(reply);
    const { connectionId } = req.params;
    if (!isConnectionId(connectionId)) return notFoundPage(reply, 'Connection', session.csrf);
    const query = timelineQuery(req.query);
    let detail;
    try {
      detail = await deps.service.connection(connectionId, query);
    } catch (err) {
      if (err instanceof AppError && err.statusCode === 404) return notFoundPage(reply, 'Connection', session.csrf);
      throw err;
    }
    return html(reply, connectionPage({
      detail, query, csrf: session.csrf,
      pageUrl: (cursor) => timelinePageUrl('/admin/connections', connectionId, query, cursor),
      notice: isNotice(req.query.notice) ? req.query.notice : null,
      sandboxUsernames: deps.sandbox?.usernames ?? null,
      hasWebhook: await deps.hasWebhook(detail.client.clientId),
    }));
  });

  app.post('/admin/connections/:connectionId/sync', {
    schema: { ...hidden, params: Type.Object({ connectionId: Type.String({ maxLength: 200 }) }), body: Type.Optional(Type.Object({ [CSRF_FIELD]: Csrf })) },
  }, async (req, reply) => {
    const csrf = await postSession(req, reply, req.body?.[CSRF_FIELD]);
    if (csrf === null) return reply;
    const id = req.params.connectionId;
    try {
      const r = await deps.service.syncNow(id);
      return reply.redirect(connectionUrl(id, r.status === 'ok' ? 'sync-ok' : 'sync-error'), 303);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      if (err.statusCode === 404) return notFoundPage(reply, 'Connection', csrf);
      if (err.code === 'sync_budget_exhausted') return reply.redirect(connectionUrl(id, 'sync-budget'), 303);
      if (err.code === 'provider_rate_limited') return reply.redirect(connectionUrl(id, 'sync-rate-limited'), 303);
      if (err.statusCode === 409) return reply.redirect(connectionUrl(id, 'sync-impossible'), 303);
      throw err;
    }
  });

  app.post('/admin/webhook-events/:eventId/replay', {
    schema: { ...hidden, params: Type.Object({ eventId: Type.String({ maxLength: 200 }) }), body: Type.Optional(Type.Object({ [CSRF_FIELD]: Csrf })) },
  }, async (req, reply) => {
    const csrf = await postSession(req, reply, req.body?.[CSRF_FIELD]);
    if (csrf === null) return reply;
    try {
      const r = await deps.service.replay(req.params.eventId);
      return r.connectionId === null ? reply.redirect('/admin', 303) : reply.redirect(connectionUrl(r.connectionId, 'replayed'), 303);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      if (err.statusCode === 404) return notFoundPage(reply, 'Event', csrf);
      throw err;
    }
  });

  const sandbox = deps.sandbox;
  if (sandbox !== null) {
    app.post('/admin/connections/:connectionId/behaviour', {
      schema: { ...hidden, params: Type.Object({ connectionId: Type.String({ maxLength: 200 }) }), body: Type.Object({ [CSRF_FIELD]: Csrf, username: Type.String({ maxLength: 50 }) }) },
    }, async (req, reply) => {
      const csrf = await postSession(req, reply, req.body[CSRF_FIELD]);
      if (csrf === null) return reply;
      if (!(await sandbox.switchBehaviour(req.params.connectionId, req.body.username))) return notFoundPage(reply, 'Connection', csrf);
      return reply.redirect(connectionUrl(req.params.connectionId, 'behaviour'), 303);
    });

    const backTo = (back: string | undefined, code: NoticeCode): string => (back !== undefined && isConnectionId(back) ? connectionUrl(back, code) : '/admin');
    app.post('/admin/sandbox/clock', {
      schema: { ...hidden, body: Type.Object({ [CSRF_FIELD]: Csrf, advance: Type.String({ maxLength: 100 }), back: Back }) },
    }, async (req, reply) => {
      const csrf = await postSession(req, reply, req.body[CSRF_FIELD]);
      if (csrf === null) return reply;
      try {
        await sandbox.advanceClock(req.body.advance);
      } catch (err) {
        if (err instanceof AppError && err.statusCode === 400) return reply.redirect(backTo(req.body.back, 'clock-bad'), 303);
        throw err;
      }
      return reply.redirect(backTo(req.body.back, 'clock'), 303);
    });

    app.post('/admin/sandbox/run', { schema: { ...hidden, body: Type.Optional(Type.Object({ [CSRF_FIELD]: Csrf, back: Back })) } }, async (req, reply) => {
      const csrf = await postSession(req, reply, req.body?.[CSRF_FIELD]);
      if (csrf === null) return reply;
      await sandbox.runDue();
      return reply.redirect(backTo(req.body?.back, 'scheduler'), 303);
    });
  }

  app.get('/admin/providers/:providerId', { schema: { ...hidden, params: Type.Object({ providerId: Type.String({ maxLength: 200 }) }) } }, async (req, reply) => {
    const session = await deps.sessions.current(req);
    if (session === null) return toSignIn(reply);
    const entry = deps.catalog.get(req.params.providerId);
    if (entry === undefined) return notFoundPage(reply, 'Provider', session.csrf);
    const since = new Date(deps.now().getTime() - 24 * HOUR_MS);
    const [buckets, failures] = await Promise.all([deps.providerHealth(entry.id, HEALTH_DAYS * 24), repo.providerFailures(entry.id, since, 20)]);
    return html(reply, providerPage({ provider: { id: entry.id, name: entry.name, type: entry.type }, buckets, failures, csrf: session.csrf }));
  });

  app.get('/admin/clients/:clientId', { schema: { ...hidden, params: Type.Object({ clientId: Type.String({ maxLength: 200 }) }) } }, async (req, reply) => {
    const session = await deps.sessions.current(req);
    if (session === null) return toSignIn(reply);
    const client = await repo.clientById(req.params.clientId);
    if (client === undefined) return notFoundPage(reply, 'Client', session.csrf);
    const since = new Date(deps.now().getTime() - 24 * HOUR_MS);
    const [counts, recentUsers, webhook] = await Promise.all([repo.clientCounts(client.id), repo.recentUsersOfClient(client.id, 20), repo.webhookHealth(client.id, since)]);
    return html(reply, clientPage({ client, users: counts.users, byState: counts.byState, recentUsers, webhook, csrf: session.csrf }));
  });
}
