/**
 * Answers that carry personal data or secrets (the API, the journey pages, the operator console and
 * API, the sandbox banks' tokens and data) are kept by no browser or shared cache: `Cache-Control:
 * no-store`, set before the handler runs so refusals and errors carry it too. The OpenID provider
 * under /oidc sets its own (no-store on token answers); the API reference (/docs), the bank icons,
 * /health and /metrics stay cacheable.
 */
import type { FastifyInstance } from 'fastify';

const PRIVATE_PATHS = /^\/(?:users|v2\.0|auth-requests|webhook-events|admin|connect|sandbox)(?:\/|$)/;

export function registerNoStore(app: FastifyInstance): void {
  app.addHook('onRequest', async (req, reply) => {
    // The routed path (a percent-encoded spelling routes to the same handler); unrouted: the path as sent.
    const path = req.routeOptions.url ?? req.url.split('?')[0] ?? '';
    if (PRIVATE_PATHS.test(path)) reply.header('cache-control', 'no-store');
  });
}
