/**
 * The operator's browser session: an HttpOnly cookie holds a random id, the database only its
 * hash. A session lapses when idle and ends at its absolute limit or at sign-out, and when the
 * admin token changes: each session keeps a fingerprint of the token it was signed in with (a
 * hash, never the token), and sessions of another token are deleted. Each form of the
 * console carries a CSRF token bound to the session (an HMAC of its id), checked on every POST on
 * top of the Origin / Sec-Fetch-Site check of http/browser-safety.ts. Times are real time (a
 * security timer), passed in.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Db } from '../db/db.ts';
import { DAY_MS, HOUR_MS } from '../time.ts';
import { adminSessionsRepository } from './repository.ts';

export const SESSION_COOKIE = 'mooring_admin';
/** A session ends this long after it was created, however active. */
export const SESSION_ABSOLUTE_MS = 7 * DAY_MS;
export const SESSION_IDLE_DEFAULT_MS = 12 * HOUR_MS;
/** The form field that carries the CSRF token. */
export const CSRF_FIELD = 'csrf';

const hashId = (id: string): string => createHash('sha256').update(id).digest('base64url');

export interface AdminSessionsDeps {
  db: Db;
  adminToken: string;
  secureCookies: boolean;
  idleMs?: number;
  securityNow?: () => number;
}

export function adminSessions(deps: AdminSessionsDeps) {
  const sessions = adminSessionsRepository(deps.db);
  const realNow = (): Date => new Date((deps.securityNow ?? Date.now)());
  const idleMs = deps.idleMs ?? SESSION_IDLE_DEFAULT_MS;
  const csrfKey = createHash('sha256').update(`mooring admin csrf:${deps.adminToken}`).digest();
  const tokenFingerprint = createHash('sha256').update(`mooring admin session token:${deps.adminToken}`).digest('base64url');

  const cookieValue = (req: FastifyRequest): string | null => {
    const cookie = (req.headers.cookie ?? '').split(';').map((c) => c.trim()).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    const value = cookie?.slice(SESSION_COOKIE.length + 1) ?? '';
    return /^[A-Za-z0-9_-]{43}$/.test(value) ? value : null;
  };
  const csrfOf = (sessionId: string): string => createHmac('sha256', csrfKey).update(sessionId).digest('base64url');

  return {
    /** The live session of this request (extending its idle time), or null. */
    async current(req: FastifyRequest): Promise<{ id: string; csrf: string } | null> {
      const id = cookieValue(req);
      if (id === null) return null;
      const now = realNow();
      const live = await sessions.touch(hashId(id), tokenFingerprint, now, new Date(now.getTime() + idleMs), new Date(now.getTime() - SESSION_ABSOLUTE_MS));
      if (live) return { id, csrf: csrfOf(id) };
      // Perhaps signed in under an admin token since replaced: those sessions are over.
      await sessions.removeOtherTokens(tokenFingerprint);
      return null;
    },

    /** Whether `given` is the CSRF token of session `sessionId` (constant time). */
    csrfMatches(sessionId: string, given: unknown): boolean {
      if (typeof given !== 'string' || given.length > 200) return false;
      const a = createHash('sha256').update(given).digest();
      const b = createHash('sha256').update(csrfOf(sessionId)).digest();
      return timingSafeEqual(a, b);
    },

    /** Starts a session; answers its Set-Cookie header. */
    async start(): Promise<string> {
      const id = randomBytes(32).toString('base64url');
      const now = realNow();
      await sessions.create(hashId(id), tokenFingerprint, now, new Date(now.getTime() + idleMs));
      await sessions.purgeExpired(now);
      return this.cookie(id, Math.floor(SESSION_ABSOLUTE_MS / 1000));
    },

    /** Ends the request's session server-side; answers the Set-Cookie header that clears it. */
    async end(req: FastifyRequest): Promise<string> {
      const id = cookieValue(req);
      if (id !== null) await sessions.remove(hashId(id));
      return this.cookie('', 0);
    },

    cookie(value: string, maxAgeSeconds: number): string {
      return `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=${maxAgeSeconds}${deps.secureCookies ? '; Secure' : ''}`;
    },
  };
}
export type AdminSessions = ReturnType<typeof adminSessions>;
