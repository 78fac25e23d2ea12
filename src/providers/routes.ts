/** The provider catalog lists (no authentication; bare arrays, as the official client expects). */
import { Type, type Static } from 'typebox';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { ErrorBody, literals } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import { escapeHtml } from '../web/html.ts';
import type { Catalog, CatalogEntry } from './catalog.ts';
import { AVAILABILITY, PROVIDER_TYPES } from './kinds.ts';
import { availability, HEALTH_WINDOW_MS } from './health.ts';
import { providersRepository } from './repository.ts';

export const WellKnownConnection = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    type: literals(PROVIDER_TYPES),
    country: Type.String(),
    bankRef: Type.String(),
    parentRef: Type.String(),
    isBeta: Type.Boolean(),
    accountTypes: Type.Array(Type.Object({ name: Type.String(), beta: Type.Boolean() })),
    iconUrl: Type.String(),
    userTypes: Type.Array(Type.String()),
    payments: Type.Array(Type.String()),
    status: Type.Object({ sync: literals(AVAILABILITY), auth: literals(AVAILABILITY) }),
  },
  { $id: 'WellKnownConnection' },
);
type WellKnownConnectionJson = Static<typeof WellKnownConnection>;

const LISTS: Record<string, (e: CatalogEntry) => boolean> = {
  'all-connections': () => true,
  'api-connections': (e) => e.type === 'api',
  'legacy-connections': (e) => e.type === 'legacy',
  'test-connections': (e) => e.type === 'test',
  'beta-connections': (e) => e.isBeta,
  'payments-connections': (e) => e.payments.length > 0,
};

export function catalogRoutes(app: App, deps: { db: Db; catalog: Catalog; clock: Clock; publicUrl: string }): void {
  async function listEntries(filter: (e: CatalogEntry) => boolean): Promise<WellKnownConnectionJson[]> {
    const now = deps.clock.now();
    const since = new Date(now.getTime() - HEALTH_WINDOW_MS);
    const repo = providersRepository(deps.db);
    const health = await repo.healthCounts(deps.catalog.all().map((e) => e.id), since);
    const auth = await repo.authCounts(since);
    const byId = new Map(health.map((h) => [h.providerId, h]));
    const authById = new Map(auth.map((a) => [a.providerId, a]));
    return deps.catalog.all().filter(filter).map((e) => {
      const h = byId.get(e.id);
      const facts = { retired: h?.retiredAt != null, outageUntil: h?.outageUntil ?? null };
      return {
        id: e.id,
        name: e.name,
        type: e.type,
        country: 'GB',
        bankRef: e.bankRef,
        parentRef: e.bankRef,
        isBeta: e.isBeta,
        accountTypes: e.accountTypes,
        iconUrl: e.iconUrl ?? `${deps.publicUrl}/bank-icons/${e.bankRef}`,
        userTypes: e.userTypes,
        payments: e.payments,
        status: {
          sync: availability({ ...facts, attempts: h?.attempts ?? 0, successes: h?.successes ?? 0 }, now),
          auth: availability({ ...facts, attempts: authById.get(e.id)?.attempts ?? 0, successes: authById.get(e.id)?.successes ?? 0 }, now),
        },
      };
    });
  }

  for (const [name, filter] of Object.entries(LISTS)) {
    app.get(`/oidc/.well-known/${name}`, {
      schema: {
        tags: ['catalog'],
        summary: `Provider catalog: ${name.replace('-', ' ')}`,
        querystring: Type.Object({ clientId: Type.Optional(Type.String()) }),
        response: { 200: Type.Array(WellKnownConnection) },
      },
    }, async () => listEntries(filter));
  }

  app.get('/bank-icons/:bankRef', {
    schema: { tags: ['catalog'], summary: "A provider's icon (SVG)", params: Type.Object({ bankRef: Type.String() }), response: { 200: Type.String(), 404: ErrorBody } },
  }, async (req, reply) => {
    const entry = deps.catalog.all().find((e) => e.bankRef === req.params.bankRef);
    if (entry === undefined) return reply.code(404).type('application/json').send({ code: 'not_found', message: 'No icon for that provider' });
    const initials = entry.name.split(/\s+/).map((w) => w[0] ?? '').join('').slice(0, 2).toUpperCase();
    return reply.type('image/svg+xml').send(
      `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" fill="#0b6e99"/><text x="32" y="40" font-family="sans-serif" font-size="24" fill="#fff" text-anchor="middle">${escapeHtml(initials)}</text></svg>`,
    );
  });
}
