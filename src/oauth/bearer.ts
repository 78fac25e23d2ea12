/**
 * Bearer-token authentication for the REST API. A route declares the scopes it needs in its
 * `config.scopes`; an onRequest hook resolves the token through oidc-provider's own models before the body is read and puts
 * who is calling (client, scopes, user) on the request. No or bad token: 401. Missing scope: 403.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { AppError, forbidden, unauthorized } from '../errors.ts';
import type { ApiScope } from './scopes.ts';
import { splitScope } from './scopes.ts';
import type { AuthContext, TokenCache } from './token-cache.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Scopes the route requires; a route with this set requires a bearer token. */
    scopes?: readonly ApiScope[];
    /** The route needs a token bound to a user (`sub`). */
    requiresUser?: boolean;
  }
  interface FastifyRequest {
    auth?: AuthContext;
  }
}

export function authOf(req: FastifyRequest): AuthContext {
  if (req.auth === undefined) throw new AppError(500, 'internal_error', 'Internal error', { privateDetail: 'route has no auth configured' });
  return req.auth;
}

async function resolveToken(provider: Provider, cache: TokenCache, value: string): Promise<AuthContext | null> {
  const cached = cache.get(value);
  if (cached !== undefined) return cached;
  const cc = await provider.ClientCredentials.find(value);
  if (cc !== undefined && !cc.isExpired && cc.clientId !== undefined) {
    const sub = cc.extra?.sub;
    const auth = { clientId: cc.clientId, scopes: new Set(splitScope(cc.scope)), userId: typeof sub === 'string' ? sub : null };
    if (cc.exp !== undefined) cache.set(value, auth, cc.exp * 1000);
    return auth;
  }
  const at = await provider.AccessToken.find(value);
  if (at !== undefined && !at.isExpired && at.clientId !== undefined && at.accountId !== undefined) {
    return { clientId: at.clientId, scopes: new Set(splitScope(at.scope)), userId: at.accountId };
  }
  return null;
}

export function registerBearerAuth(app: FastifyInstance, provider: Provider, cache: TokenCache): void {
  // onRequest: a caller without a valid token learns nothing else (not even that its input is invalid).
  app.addHook('onRequest', async (req) => {
    const config = req.routeOptions.config;
    const required = config.scopes;
    if (required === undefined) return;
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header);
    if (match === null || match[1] === undefined) throw unauthorized();
    const auth = await resolveToken(provider, cache, match[1]);
    if (auth === null) throw unauthorized('The bearer token is invalid or has expired');
    const missing = required.filter((s) => !auth.scopes.has(s));
    if (missing.length > 0) throw forbidden(`The token lacks the scope${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, { missingScopes: missing });
    if (config.requiresUser === true && auth.userId === null) {
      throw forbidden('This endpoint needs a token issued for a user (request it with the sub parameter)');
    }
    req.auth = auth;
  });
}
