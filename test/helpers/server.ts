/** Starts a real Mooring server on a free loopback port over a fresh test database. */
import net from 'node:net';
import { loadConfig, type Config } from '../../src/config.ts';
import type { CatalogEntry } from '../../src/providers/catalog.ts';
import { createLogger } from '../../src/logger.ts';
import { createServer, type Server } from '../../src/server.ts';
import { createTestDb, type TestDb } from './db.ts';
import type { Timers } from '../../src/timers.ts';
import { DOMAIN_START, TEST_TIMERS } from './time.ts';
import { TEST_DATA_DIR } from './pki.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
/** The key every test server seals secrets under (32 bytes, base64), unless a test passes its own. */
export const TEST_ENCRYPTION_KEY = 'dGVzdC1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcy0wMDA=';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestServer {
  baseUrl: string;
  server: Server;
  testDb: TestDb;
  config: Config;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  /** Run the durable job queue and a sync worker in the server process (default: off; syncs run inline). */
  jobs?: boolean;
  /** Timers on top of TEST_TIMERS. */
  timers?: Partial<Timers>;
  /** Serve an existing test database (a second process over the same data); stop() then leaves it in place. */
  testDb?: TestDb;
  /** Real time as the admin throttle and sessions see it (default: the system's). */
  securityNow?: () => number;
  /** Providers as a providers file would configure them, made once the server's URLs are known. */
  providers?: (urls: { publicUrl: string; mtlsUrl: string }) => CatalogEntry[];
  /** The admin token (default ADMIN_TOKEN). */
  adminToken?: string;
}

export async function startTestServer(overrides: Partial<Config> = {}, opts: TestServerOptions = {}): Promise<TestServer> {
  const testDb = opts.testDb ?? (await createTestDb());
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  // The sandbox PKI lives in the shared test data directory; the banks' mutual-TLS listener gets a free port.
  const mtlsPort = overrides.sandboxMtlsPort ?? (await freePort());
  const providers = opts.providers?.({ publicUrl: baseUrl, mtlsUrl: `https://127.0.0.1:${mtlsPort}` });
  const config = loadConfig({}, {
    port, host: '127.0.0.1', publicUrl: baseUrl, adminToken: opts.adminToken ?? ADMIN_TOKEN, dataDir: TEST_DATA_DIR, sandboxMtlsPort: mtlsPort, sandboxClockStart: DOMAIN_START,
    encryptionKey: TEST_ENCRYPTION_KEY, ...(providers === undefined ? {} : { providers }), ...overrides,
  });
  const server = await createServer({ config, logger: createLogger(process.env.TEST_LOG_LEVEL === undefined ? 'silent' : config.logLevel), adminToken: opts.adminToken ?? ADMIN_TOKEN, db: testDb.db, jobs: opts.jobs ?? false, timers: { ...TEST_TIMERS, ...opts.timers }, ...(opts.securityNow !== undefined ? { securityNow: opts.securityNow } : {}) });
  if (server.app === null) throw new Error('the test server has no HTTP app');
  await server.app.listen({ port, host: '127.0.0.1' });
  return {
    baseUrl,
    server,
    testDb,
    config,
    async stop() {
      await server.close();
      if (opts.testDb === undefined) await testDb.drop();
    },
  };
}

/** Registers an API client over RFC 7591 with the admin token. */
export async function registerClient(baseUrl: string, body: Record<string, unknown>): Promise<Record<string, unknown> & { client_id: string; client_secret?: string }> {
  const res = await fetch(`${baseUrl}/oidc/reg`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown> & { client_id: string; client_secret?: string };
  if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
