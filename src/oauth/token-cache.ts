/**
 * A small in-process cache of resolved bearer tokens. The official client fetches a fresh token for
 * every call and uses it at once, so remembering tokens this process issued or resolved saves a
 * database round trip on the hot path. Entries live until the token expires or for a second,
 * whichever is sooner: a token revoked in another process (RFC 7009 revocation, a deleted grant)
 * is refused everywhere within that second, with no cross-process signal that PGlite lacks.
 */
/** Who is calling with a bearer token: the client, its scopes and the user it acts for. */
export interface AuthContext {
  clientId: string;
  scopes: ReadonlySet<string>;
  /** The user the token acts for (`sub`), when it has one. */
  userId: string | null;
}

export const TOKEN_CACHE_MAX_ENTRIES = 10_000;
/** Bounds how long a revoked token can still be accepted by a process that cached it. */
export const TOKEN_CACHE_TTL_MS = 1_000;

export interface TokenCache {
  get(token: string): AuthContext | undefined;
  set(token: string, auth: AuthContext, expiresAtMs: number): void;
  /** Forgets a token this process saw revoked. */
  delete(token: string): void;
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
    delete(token) {
      entries.delete(token);
    },
  };
}
