/**
 * Mounts the OpenID provider under /oidc inside Fastify. The provider reads request bodies itself,
 * so this scope registers no body parsers; it sees the full original URL (it computes its own
 * endpoint URLs from it) and a path with the /oidc prefix removed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { OIDC_PREFIX } from './provider.ts';

export async function mountOidc(app: FastifyInstance, provider: Provider): Promise<void> {
  const callback = provider.callback();
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      reply.hijack();
      const raw = req.raw as typeof req.raw & { originalUrl?: string };
      raw.originalUrl = raw.url;
      const rest = (raw.url ?? '/').slice(OIDC_PREFIX.length);
      raw.url = rest.startsWith('/') ? rest : `/${rest}`;
      await callback(raw, reply.raw);
    };
    scope.all(OIDC_PREFIX, { schema: { hide: true } }, handler);
    scope.all(`${OIDC_PREFIX}/*`, { schema: { hide: true } }, handler);
  });
}
