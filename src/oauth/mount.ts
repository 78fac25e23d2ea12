/**
 * Mounts the OpenID provider under /oidc inside Fastify. The provider reads request bodies itself,
 * so this scope registers no body parsers; it sees the full original URL (it computes its own
 * endpoint URLs from it) and a path with the /oidc prefix removed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { OIDC_PREFIX } from './provider.ts';
import { withClientIdFromRequestUri } from './request-uri.ts';

export async function mountOidc(app: FastifyInstance, provider: Provider): Promise<void> {
  const callback = provider.callback();
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      reply.hijack();
      const raw = req.raw as typeof req.raw & { originalUrl?: string };
      let rest = (raw.url ?? '/').slice(OIDC_PREFIX.length);
      if (rest.startsWith('/auth?')) {
        const fixed = await withClientIdFromRequestUri(provider, new URLSearchParams(rest.slice('/auth?'.length)));
        if (fixed !== null) rest = `/auth?${fixed.toString()}`;
      }
      raw.url = rest.startsWith('/') ? rest : `/${rest}`;
      // oidc-provider derives its mount path from the difference between these two.
      raw.originalUrl = `${OIDC_PREFIX}${raw.url}`;
      await callback(raw, reply.raw);
    };
    scope.all(OIDC_PREFIX, { schema: { hide: true } }, handler);
    scope.all(`${OIDC_PREFIX}/*`, { schema: { hide: true } }, handler);
  });
}
