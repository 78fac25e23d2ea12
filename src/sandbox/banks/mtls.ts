/**
 * The sandbox banks' mutual-TLS listener (SPEC section 10, sandbox): an HTTPS server of its own,
 * with the sandbox PKI's server certificate, asking every client for a certificate (trust = the
 * sandbox CA). Unverified or missing certificates are not refused by TLS: the bank answers them
 * itself (invalid_client at the token endpoint, 401 at the resources), as real banks' gateways do.
 * It serves the Open Banking banks' token endpoint, consents and resources (openbanking-api.ts),
 * every answer with Cache-Control: no-store.
 */
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { openBankingApiRoutes } from './openbanking-api.ts';
import type { SandboxObBanks } from './fapi-provider.ts';
import type { SandboxBankDeps } from './http.ts';
import type { TrustProxy } from '../../config.ts';
import { fastifyTrustProxy } from '../../http/trust-proxy.ts';
import { registerNoStore } from '../../http/no-store.ts';

export interface MtlsListener {
  /** The port it listens on (the configured one, or the one the system chose for 0). */
  port: number;
  close(): Promise<void>;
}

const KEEP_ALIVE_MS = 65_000;

export async function startSandboxMtlsListener(opts: {
  deps: SandboxBankDeps;
  banks: SandboxObBanks;
  host: string;
  port: number;
  logger: FastifyBaseLogger;
  bodyLimitBytes: number;
  trustProxy: TrustProxy;
  /** Told how long each answer took, in ms (benchmarks count and time bank calls). */
  onCall?: (elapsedMs: number) => void;
}): Promise<MtlsListener> {
  const { pki } = opts.banks.deps;
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.bodyLimitBytes,
    trustProxy: fastifyTrustProxy(opts.trustProxy),
    keepAliveTimeout: KEEP_ALIVE_MS,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1000 },
    https: { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: false },
  });
  // Tokens, consents and account data: kept by no cache, as on the main listener (the OpenID provider sets its own on token answers).
  registerNoStore(app);
  const onCall = opts.onCall;
  if (onCall !== undefined) app.addHook('onResponse', async (_req, reply) => onCall(reply.elapsedTime));
  await app.register(async (scope) => openBankingApiRoutes(scope, opts.deps, opts.banks));
  // Several API processes on one machine share the port (Linux SO_REUSEPORT); they serve the same banks from the database.
  const listen = { port: opts.port, host: opts.host, reusePort: opts.port !== 0 };
  await app.listen(listen);
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.port;
  return { port, close: () => app.close() };
}
