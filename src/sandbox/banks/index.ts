/**
 * The sandbox banks (SPEC section 7): real HTTP counterparts that Mooring serves itself and talks to
 * through its provider adapters exactly as it would to real providers.
 *   /sandbox/ob/:slug/…         Open Banking AIS banks, FAPI 1.0 Advanced: their website here
 *                               (openbanking.ts: discovery, authorise and login pages), their API on
 *                               the mutual-TLS listener (mtls.ts, openbanking-api.ts, openbanking-data.ts)
 *   /sandbox/legacy/:slug/…     credential-based providers (legacy.ts)
 *   /sandbox/valuation/:slug/…  property and vehicle valuations (valuation.ts)
 *   /sandbox/enablebanking/…    the Enable Banking API's counterpart (enablebanking.ts: its API and
 *                               authorisation page; enablebanking-data.ts: banks and accounts), for
 *                               providers-file entries with `adapter: enablebanking`
 *   /sandbox/gocardless/…       the GoCardless Bank Account Data counterpart (gocardless.ts), for
 *                               providers-file entries whose apiUrl points at it
 * `:slug` is the catalog entry's bankRef; the catalog is read per request. Behaviours per sandbox
 * username are in behaviours.ts, generated data in generator.ts, bank state in store.ts.
 */
import type { FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import { enableBankingRoutes } from './enablebanking.ts';
import type { SandboxBankDeps } from './http.ts';
import { goCardlessRoutes } from './gocardless.ts';
import { legacyRoutes } from './legacy.ts';
import { openBankingWebRoutes } from './openbanking.ts';
import { valuationRoutes } from './valuation.ts';

export type { SandboxBankDeps } from './http.ts';
export { SANDBOX_USERNAMES, isSandboxUsername, type SandboxUsername } from './behaviours.ts';
export { setSandboxBehaviour } from './store.ts';
export { SANDBOX_ONE_TIME_CODE } from './legacy.ts';
export { GC_SANDBOX_PREFIX } from './gocardless.ts';
export { SANDBOX_GC_SECRET_ID, SANDBOX_GC_SECRET_KEY, GC_INSTITUTIONS } from './gocardless-data.ts';
export { SandboxObBanks } from './fapi-provider.ts';
export { sandboxOpenBankingSettings, sandboxMtlsUrl } from './fapi-settings.ts';
export { startSandboxMtlsListener, type MtlsListener } from './mtls.ts';

export async function registerSandboxBanks(app: FastifyInstance, deps: SandboxBankDeps): Promise<void> {
  await app.register(async (banks) => {
    // The banks stand in for other organisations' APIs: they are not part of Mooring's OpenAPI document.
    banks.addHook('onRoute', (route) => {
      route.schema = Object.assign(route.schema ?? {}, { hide: true });
    });
    // The login page and the OAuth token endpoint post forms; the app may already parse them.
    if (!banks.hasContentTypeParser('application/x-www-form-urlencoded')) await banks.register(formbody);
    const ob = deps.openBanking;
    if (ob !== null) await banks.register(async (scope) => openBankingWebRoutes(scope, deps, ob));
    await banks.register(async (legacy) => legacyRoutes(legacy, deps));
    await banks.register(async (valuation) => valuationRoutes(valuation, deps));
    const eb = deps.enableBanking;
    if (eb !== undefined) await banks.register(async (scope) => enableBankingRoutes(scope, { ...deps, enableBanking: eb }));
    await banks.register(async (gocardless) => goCardlessRoutes(gocardless, deps));
  });
}
