/**
 * buildApp(deps): the whole HTTP application — identity service, OpenID provider, resource server,
 * sandbox banks, admin and docs — built but not listening. Only main.ts owns the process.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type Provider from 'oidc-provider';
import type { MovableClock } from './clock.ts';
import type { Config } from './config.ts';
import { ping, type Db } from './db/db.ts';
import type { SecretBox } from './crypto/secrets.ts';
import { frameworkErrors, registerErrorHandling } from './http/errors.ts';
import { createMetrics, registerMetrics, type Metrics } from './metrics/metrics.ts';
import { registerBodyParsing } from './http/body-parsing.ts';
import { registerBrowserSafety } from './http/browser-safety.ts';
import { registerNoStore } from './http/no-store.ts';
import { fastifyTrustProxy } from './http/trust-proxy.ts';
import { validatorCompiler } from './http/validation.ts';
import type { App } from './http/types.ts';
import { registerBearerAuth } from './oauth/bearer.ts';
import type { ServerKeys } from './oauth/keys.ts';
import { mountOidc } from './oauth/mount.ts';
import { createTokenCache } from './oauth/token-cache.ts';
import { BANK_SCOPE_PREFIX } from './oauth/scopes.ts';
import { createOidcProvider, OIDC_PREFIX } from './oauth/provider.ts';
import type { Catalog } from './providers/catalog.ts';
import type { ProviderAdapters } from './providers/provider.ts';
import { catalogRoutes } from './providers/routes.ts';
import { usersRepository } from './users/repository.ts';
import { usersService } from './users/service.ts';
import { usersRoutes } from './users/routes.ts';
import { connectionsRepository, type ConnectionsRepository } from './connections/repository.ts';
import { connectionsService } from './connections/service.ts';
import { statusChangeRecorder } from './connections/status-change.ts';
import { connectionsRoutes } from './connections/routes.ts';
import { syncsRepository } from './syncs/repository.ts';
import type { SyncEngine } from './syncs/engine.ts';
import { advanceSandboxClock, runSandboxScheduler, sandboxControlRoutes, switchSandboxBehaviour } from './sandbox/control.ts';
import { SANDBOX_USERNAMES } from './sandbox/banks/index.ts';
import type { ConnectionEvents } from './webhooks/events.ts';
import type { WebhookDispatcher } from './webhooks/dispatcher.ts';
import { webhookRoutes } from './webhooks/routes.ts';
import { adminOverview, adminRoutes } from './admin/routes.ts';
import { adminSessions } from './admin/session.ts';
import { registerConsole } from './console/index.ts';
import { createAdminThrottle } from './admin/auth.ts';
import { requestObjectRoutes } from './oauth/request-routes.ts';
import { authRequestsService } from './auth-requests/service.ts';
import { authRequestRoutes } from './auth-requests/routes.ts';
import { syncsService } from './syncs/service.ts';
import { resourceSyncRoutes, syncHistoryRoutes } from './syncs/routes.ts';
import { accountsRoutes } from './accounts/routes.ts';
import { journeysRepository } from './journeys/repository.ts';
import { journeysService } from './journeys/service.ts';
import { journeyRoutes } from './journeys/routes.ts';
import { registerSandboxBanks, type SandboxBankDeps } from './sandbox/banks/index.ts';
import type { Timers } from './timers.ts';
import type { ProviderCallLog } from './provider-calls/writer.ts';
import { providerCallsService } from './provider-calls/service.ts';
import { providerCallsRoutes } from './provider-calls/routes.ts';

export interface AppDeps {
  config: Config;
  db: Db;
  clock: MovableClock;
  logger: FastifyBaseLogger;
  catalog: Catalog;
  adapters: ProviderAdapters;
  keys: ServerKeys;
  /** Seals secrets at rest (client secrets, bank grants, webhook secrets). */
  secrets: SecretBox;
  adminToken: string;
  /** What the sandbox banks run on (sandbox mode only; server.ts shares it with their mutual-TLS listener). */
  sandboxBanks: SandboxBankDeps | null;
  engine: SyncEngine;
  events: ConnectionEvents;
  dispatcher: WebhookDispatcher;
  timers: Timers;
  /** This process's provider call log (journeys and revocations record their provider calls). */
  callLog?: ProviderCallLog;
  /** This process's Prometheus counters (default: a registry of its own). */
  metrics?: Metrics;
  /** Real time for security timers (admin throttle and sessions); tests inject it. */
  securityNow?: () => number;
}

export interface BuiltApp {
  app: FastifyInstance;
  oidc: Provider;
}

export async function buildApp(deps: AppDeps): Promise<BuiltApp> {
  const { config, db, clock, catalog, adapters } = deps;
  const fastify = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: config.bodyLimitBytes,
    trustProxy: fastifyTrustProxy(config.trustProxy),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1000 },
    frameworkErrors,
  });
  const app: App = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler());
  registerErrorHandling(fastify);
  registerBodyParsing(fastify, config.bodyLimitBytes);
  registerNoStore(fastify);
  registerBrowserSafety(fastify, config.publicUrl);
  await app.register(formbody, { bodyLimit: config.bodyLimitBytes });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Mooring',
        version: '0.1.0',
        description: 'Keeps bank connections alive and truthfully described. Compatible with the Moneyhub identity and data APIs.',
      },
      servers: [{ url: config.publicUrl }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: `Access token from ${config.publicUrl}${OIDC_PREFIX}/token (client_credentials, with sub for user-bound calls)` },
          admin: { type: 'http', scheme: 'bearer', description: 'The operator token (MOORING_ADMIN_TOKEN)' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  registerMetrics(fastify, deps.metrics ?? createMetrics(), { db, clock, log: deps.logger }, config.metricsToken);

  const log = deps.logger;
  const adminThrottle = createAdminThrottle(deps.securityNow === undefined ? {} : { now: deps.securityNow });
  const users = usersRepository(db);
  const tokenCache = createTokenCache();
  const oidc = createOidcProvider({
    tokenCache,
    db,
    secrets: deps.secrets,
    issuer: `${config.publicUrl}${OIDC_PREFIX}`,
    keys: deps.keys,
    adminToken: deps.adminToken,
    bankScopes: catalog.all().map((e) => `${BANK_SCOPE_PREFIX}${e.id}`),
    async journeyOutcome(grantId) {
      return (await journeysRepository(db).connectionOfGrant(grantId)) ?? null;
    },
  });
  oidc.on('server_error', (_ctx, err) => log.error({ err }, 'OpenID provider error'));
  registerBearerAuth(fastify, oidc, tokenCache);

  const { engine, events, dispatcher } = deps;
  // In one transaction: the change, then its status events (the row lock that makes them exactly-once holds until they are logged).
  const recordStatusChange = statusChangeRecorder({ catalog, clock });
  const changeConnection = (connectionId: string, change: (repo: ConnectionsRepository) => Promise<void>): Promise<void> =>
    db.transaction(async (tx) => {
      await change(connectionsRepository(tx, deps.secrets));
      await recordStatusChange(tx, connectionId);
    });
  const callLog = deps.callLog === undefined ? {} : { callLog: deps.callLog };
  const connections = connectionsService({ connections: connectionsRepository(db, deps.secrets), catalog, adapters, clock, log, changeConnection, ...callLog });
  const userSvc = usersService({ users, clock, sandbox: config.sandbox, deleteUserConnections: (userId) => connections.revokeAllOfUser(userId) });
  const syncs = syncsService({ syncs: syncsRepository(db), engine, clock });
  const journeys = journeysService({ db, oidc, catalog, adapters, clock, engine, changeConnection, publicUrl: config.publicUrl, sandbox: config.sandbox, log, secrets: deps.secrets, ...callLog });

  await mountOidc(fastify, oidc, { publicUrl: config.publicUrl, adminThrottle });
  catalogRoutes(app, { db, catalog, clock, publicUrl: config.publicUrl });
  usersRoutes(app, { users: userSvc, publicUrl: config.publicUrl });
  connectionsRoutes(app, { users: userSvc, connections, publicUrl: config.publicUrl });
  syncHistoryRoutes(app, { users: userSvc, connections, syncs, publicUrl: config.publicUrl });
  resourceSyncRoutes(app, { syncs, connections });
  accountsRoutes(app, { db, catalog, publicUrl: config.publicUrl });
  journeyRoutes(app, { journeys, oidc });
  const sessions = adminSessions({
    db, adminToken: deps.adminToken, secureCookies: config.publicUrl.startsWith('https:'),
    idleMs: config.adminSessionIdleMinutes * 60_000, ...(deps.securityNow !== undefined ? { securityNow: deps.securityNow } : {}),
  });
  adminRoutes(app, { db, catalog, clock, adminToken: deps.adminToken, sessions, throttle: adminThrottle });
  const sandboxControls = { db, clock, engine, events, dispatcher, concurrency: config.workerConcurrency };
  registerConsole(app, {
    db, catalog, clock, connections, users: userSvc, engine, sessions, adminToken: deps.adminToken, throttle: adminThrottle, publicUrl: config.publicUrl,
    overview: adminOverview({ db, catalog, clock }),
    // The timeline shows this process's provider calls up to now, not up to its call log's last flush.
    flushCallLog: async () => deps.callLog?.flush(),
    deliverSoon: () => void dispatcher.pump().catch((err: unknown) => log.warn({ err }, 'could not start webhook deliveries')),
    sandbox: config.sandbox ? {
      usernames: SANDBOX_USERNAMES,
      switchBehaviour: (connectionId, username) => switchSandboxBehaviour(db, connectionId, username),
      advanceClock: (advance) => advanceSandboxClock(sandboxControls, advance),
      runDue: () => runSandboxScheduler(sandboxControls),
    } : null,
  });
  providerCallsRoutes(app, { service: providerCallsService({ db, catalog, clock, ...callLog }), adminToken: deps.adminToken, throttle: adminThrottle, publicUrl: config.publicUrl });
  await requestObjectRoutes(fastify, { oidc, issuer: `${config.publicUrl}${OIDC_PREFIX}` });
  authRequestRoutes(app, { authRequests: authRequestsService({ db, oidc, clock, catalog, issuer: `${config.publicUrl}${OIDC_PREFIX}` }), publicUrl: config.publicUrl });
  webhookRoutes(app, { db, secrets: deps.secrets, oidc, clock, adminToken: deps.adminToken, adminThrottle, publicUrl: config.publicUrl, policy: { allowPrivate: config.webhookAllowPrivate, allowLoopback: config.sandbox } });
  if (config.sandbox) {
    if (deps.sandboxBanks !== null) await registerSandboxBanks(fastify, deps.sandboxBanks);
    sandboxControlRoutes(app, { db, clock, catalog, engine, events, dispatcher, adminToken: deps.adminToken, adminThrottle, concurrency: config.workerConcurrency });
  }

  app.get('/health', { schema: { hide: true } }, async () => {
    await ping(db);
    return { status: 'ok' };
  });
  app.get('/', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('application/json').send({ name: 'Mooring', docs: `${config.publicUrl}/docs`, issuer: `${config.publicUrl}${OIDC_PREFIX}` }),
  );
  return { app: fastify, oidc };
}
