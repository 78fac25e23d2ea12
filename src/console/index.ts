/**
 * The operator console (SPEC sections 1 and 9; "why is this user's connection broken, and since
 * when?"): its admin API and its pages, over one service. app.ts registers it with one call.
 */
import type { AdminThrottle } from '../admin/auth.ts';
import type { OverviewJson } from '../admin/routes.ts';
import type { AdminSessions } from '../admin/session.ts';
import type { App } from '../http/types.ts';
import { providerHealthBuckets } from './health.ts';
import { consoleRepository } from './repository.ts';
import { consolePageRoutes, type ConsoleSandbox } from './page-routes.ts';
import { consoleApiRoutes } from './routes.ts';
import { consoleService, type ConsoleServiceDeps } from './service.ts';

export interface ConsoleDeps extends ConsoleServiceDeps {
  sessions: AdminSessions;
  overview(): Promise<OverviewJson>;
  adminToken: string;
  throttle?: AdminThrottle;
  publicUrl: string;
  sandbox: ConsoleSandbox | null;
}

export function registerConsole(app: App, deps: ConsoleDeps): void {
  const service = consoleService(deps);
  consoleApiRoutes(app, { service, adminToken: deps.adminToken, publicUrl: deps.publicUrl, ...(deps.throttle !== undefined ? { throttle: deps.throttle } : {}) });
  consolePageRoutes(app, {
    db: deps.db, catalog: deps.catalog, service, sessions: deps.sessions, overview: deps.overview, sandbox: deps.sandbox,
    now: () => deps.clock.now(),
    providerHealth: async (providerId, hours) => {
      await deps.flushCallLog();
      return providerHealthBuckets(deps.db, providerId, deps.clock.now(), hours);
    },
    hasWebhook: (clientId) => consoleRepository(deps.db).hasWebhook(clientId),
  });
}
