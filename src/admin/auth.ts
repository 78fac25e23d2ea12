/** The operator's bearer token guards admin and sandbox-control routes. */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { unauthorized } from '../errors.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export function adminGuard(adminToken: string): (req: FastifyRequest) => Promise<void> {
  const expected = digest(adminToken);
  return async (req) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (m === null || m[1] === undefined || !timingSafeEqual(digest(m[1]), expected)) {
      throw unauthorized('This needs the admin token (MOORING_ADMIN_TOKEN) as a bearer token');
    }
  };
}
