/** The scopes Mooring knows, written once and used by the OpenID provider, the routes and the docs. */

/** Scopes of the browser journeys; always allowed in authorisation requests (besides the dynamic `id:<bankId>`). */
export const JOURNEY_SCOPES = ['openid', 'offline_access', 'reauth', 'reconsent', 'refresh'] as const;

/** Scopes that guard the REST API; a client's registered `scope` picks among them. */
export const API_SCOPES = [
  'user:create',
  'user:read',
  'user:update',
  'user:delete',
  'auth_requests:read',
  'auth_requests:write',
  'accounts:read',
  'accounts:write:all',
  'transactions:read:all',
  'webhooks:read',
  'webhooks:write',
] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export const ALL_STATIC_SCOPES: readonly string[] = [...JOURNEY_SCOPES, ...API_SCOPES];

const API_SCOPE_SET: ReadonlySet<string> = new Set(API_SCOPES);
export const isApiScope = (s: string): s is ApiScope => API_SCOPE_SET.has(s);

/** The id: scope of a connect journey, e.g. `id:1ffe704d39629a929c8e293880fb449a`. */
export const BANK_SCOPE_PREFIX = 'id:';

export const splitScope = (scope: string | undefined | null): string[] =>
  (scope ?? '').split(' ').filter((s) => s.length > 0);
