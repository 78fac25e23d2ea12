/**
 * A small in-process cache of resolved bearer tokens. The official client fetches a fresh token for
 * every call and uses it at once, so remembering tokens this process issued or resolved saves a
 * database round trip on the hot path. Entries live until the token expires or for a minute,
 * whichever is sooner (tokens cannot be revoked early, so nothing goes stale before then).
 */
import type { AuthContext } from './bearer.ts';

export const TOKEN_CACHE_MAX_ENTRIES = 10_000;
export const TOKEN_CACHE_TTL_MS = 60_000;

export interface TokenCache {
  get(token: string): AuthContext | undefined;
  set(token: string, auth: AuthContext, expiresAtMs: number): void;
}

export function createTokenCache(realNow: () => number = () => Date.now()): TokenCache {
  const entries = new Map<string, { auth: AuthContext; until: number }>();
  return {
    get(token) {
      const e = entries.get(token);
      if (e === undefined) return undefined;
      if (e.until <= realNow()) {
        entries.delete(token);
        return undefined;
      }
      return e.auth;
    },
    set(token, auth, expiresAtMs) {
      if (entries.size >= TOKEN_CACHE_MAX_ENTRIES) {
        // Maps iterate in insertion order: drop the oldest entry.
        const oldest = entries.keys().next().value;
        if (oldest !== undefined) entries.delete(oldest);
      }
      entries.set(token, { auth, until: Math.min(expiresAtMs, realNow() + TOKEN_CACHE_TTL_MS) });
    },
  };
}
