/**
 * TRUST_PROXY (config.ts) as Fastify's trustProxy option. Fastify trusts nothing when given a hop
 * count (it cannot tell a proxy from a client that reaches Mooring directly), so a count becomes a
 * trust function: the socket's peer and the X-Forwarded-For entries appended by the next
 * `hops - 1` proxies are proxies; the entry before them is the client's address.
 */
import type { TrustProxy } from '../config.ts';

export type FastifyTrustProxy = boolean | string[] | ((address: string, hop: number) => boolean);

export function fastifyTrustProxy(trust: TrustProxy): FastifyTrustProxy {
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  return trust;
}
