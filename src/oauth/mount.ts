/**
 * Mounts the OpenID provider under /oidc inside Fastify. The provider reads request bodies itself,
 * so this scope registers no body parsers; it sees the full original URL (it computes its own
 * endpoint URLs from it) and a path with the /oidc prefix removed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { OIDC_PREFIX } from './provider.ts';
import { tooManyAttempts, type AdminThrottle } from '../admin/auth.ts';
import { withClientIdFromRequestUri } from './request-uri.ts';

/**
 * Whether `url` (under /oidc) reaches oidc-provider's registration endpoint, as its router decides:
 * the path compared without regard to case, with one trailing slash ignored.
 */
function isRegistrationUrl(url: string): boolean {
  let path = url.split('?')[0] ?? '';
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path.toUpperCase() === `${OIDC_PREFIX}/reg`.toUpperCase();
}

export async function mountOidc(app: FastifyInstance, provider: Provider, opts: { publicUrl: string; adminThrottle?: AdminThrottle }): Promise<void> {
  const callback = provider.callback();
  const base = new URL(opts.publicUrl);
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      // Client registration takes the admin token (the initial access token): its failures are throttled too.
      const registration = isRegistrationUrl(req.url) && req.method === 'POST' && /^bearer\s/i.test(req.headers.authorization ?? '');
      const wait = registration ? opts.adminThrottle?.retryAfterSeconds(req.ip) ?? null : null;
      if (wait !== null && wait !== undefined) throw tooManyAttempts(wait);
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
      // The provider builds its endpoint URLs from these: they are PUBLIC_URL's, never what the client sent.
      raw.headers.host = base.host;
      raw.headers['x-forwarded-host'] = base.host;
      raw.headers['x-forwarded-proto'] = base.protocol.slice(0, -1);
      // The client address as Fastify judged it under TRUST_PROXY, never X-Forwarded-For entries it did not trust.
      raw.headers['x-forwarded-for'] = req.ip;
      // The provider's own pages (errors, form_post) must not be framed by other sites either.
      reply.raw.setHeader('x-frame-options', 'DENY');
      reply.raw.setHeader('content-security-policy', "frame-ancestors 'none'");
      await callback(raw, reply.raw);
      if (registration && reply.raw.statusCode === 401) opts.adminThrottle?.recordFailure(req.ip);
    };
    scope.all(OIDC_PREFIX, { schema: { hide: true } }, handler);
    scope.all(`${OIDC_PREFIX}/*`, { schema: { hide: true } }, handler);
  });
}
