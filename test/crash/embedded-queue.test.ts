/**
 * The embedded single process with the sync queue on (SPEC sections 1 and 5): the server runs a
 * sync worker in-process (on PGlite in a plain `npm test`), whose own scheduler tick queues due
 * syncs into the syncs table and whose claim loop runs them — nobody calls /sandbox/scheduler/run here. Then, end to end
 * through that worker, a provider that answers garbage or never answers costs that sync (an
 * `error`), not the worker: the next scheduled syncs still run, and succeed once the provider does.
 *
 * The provider misbehaves through a small plain-HTTP proxy: the connection's provider is an
 * operator's entry that is the sandbox Modelo bank under another id and name, whose resource API
 * (`openbanking.resourceBaseUrl`) is the proxy. The proxy forwards to the bank's mutual-TLS listener
 * with the sandbox client certificate (so the bank still sees the certificate its access tokens are
 * bound to), and can swap the bank's account answers for garbage or silence. PUBLIC_URL points at
 * the proxy too, which passes the bank's website (discovery, authorise and login pages) through.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODELO_ID, sandboxCatalog, type CatalogEntry } from '../../src/providers/catalog.ts';
import { sandboxMtlsUrl, sandboxOpenBankingSettings } from '../../src/sandbox/banks/index.ts';
import { connect, officialClient, sandbox, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { testPki } from '../helpers/pki.ts';
import { waitUntil } from '../helpers/processes.ts';
import { freePort, startTestServer, type TestServer } from '../helpers/server.ts';
import { testDatabaseUrl } from '../helpers/db.ts';

/** The operator's provider this test connects through: Modelo, with its resource API behind the proxy. */
const PROXIED_ID = '0e1dbd9c3f6a4b7c8d9e0f1a2b3c4d5e';
/** The bank's Read/Write API, which lives on its mutual-TLS listener (consents, accounts, balances, transactions). */
const BANK_API = /^\/sandbox\/ob\/[^/]+\/open-banking\//;
/** The calls of a sync that fetch data (not the journey's pages, the consents or the token endpoint). */
const BANK_DATA_CALL = /^\/sandbox\/ob\/[^/]+\/open-banking\/v3\.1\/aisp\/accounts/;
/** Hop-by-hop headers a proxy does not pass on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'host']);
const endToEnd = (headers: http.IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> =>
  Object.fromEntries(Object.entries(headers).filter((e): e is [string, string | string[]] => e[1] !== undefined && !HOP_BY_HOP.has(e[0].toLowerCase())));
/** This server's timers: the scheduler ticks often, and a provider gets a short time per call. */
const TIMERS = { schedulerTickMs: 250, providerTimeoutMs: 2_000, sandboxSlowCallMs: 500 };
/** Generous bounds for a loaded machine (an idle worker looks for due syncs every 0.5 s); nothing asserts how fast it was. */
const TICK_WAIT_MS = 20_000;
const TIMEOUT_WAIT_MS = 30_000;

type Mode = 'pass' | 'garbage' | 'hang';

interface SyncJson {
  id: string;
  action: string;
  method: string;
  state: string;
  fetchStatus: string | null;
  errorDetail: string | null;
}

describe(`the job queue in the embedded single process (${testDatabaseUrl() === null ? 'PGlite' : 'PostgreSQL'})`, () => {
  let mode: Mode = 'pass';
  let targetPort = 0;
  /** The bank's mutual-TLS listener, and Mooring's client certificate to present to it. */
  let mtlsUrl = '';
  const pki = testPki();
  const withCert = new Agent({ connect: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey } });
  const tampered: Record<Exclude<Mode, 'pass'>, number> = { garbage: 0, hang: 0 };
  const hung = new Set<http.ServerResponse>();
  const proxy = http.createServer((req, res) => {
    if (mode !== 'pass' && BANK_DATA_CALL.test(req.url ?? '')) {
      tampered[mode] += 1;
      if (mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('<html><body>Our service is having a moment {"Data": </body></html>');
      } else {
        hung.add(res);
        res.on('close', () => hung.delete(res));
      }
      return;
    }
    if (BANK_API.test(req.url ?? '')) {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const body = Buffer.concat(chunks);
        const up = await request(`${mtlsUrl}${req.url ?? ''}`, {
          method: (req.method ?? 'GET') as 'GET', headers: endToEnd(req.headers), dispatcher: withCert,
          ...(body.length > 0 ? { body } : {}),
        });
        const answer = Buffer.from(await up.body.arrayBuffer());
        res.writeHead(up.statusCode, { ...endToEnd(up.headers), 'content-length': String(answer.length) });
        res.end(answer);
      })().catch(() => res.destroy());
      return;
    }
    const upstream = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });

  let ts: TestServer;
  let url: string;
  let mh: MoneyhubClient;
  let userId: string;
  let connectionId: string;

  const syncs = async (): Promise<SyncJson[]> => (await mh.getConnectionSyncs({ userId, connectionId })).data as unknown as SyncJson[];
  const connection = async (): Promise<Record<string, unknown>> => (await mh.getUserConnections({ userId })).data[0] as unknown as Record<string, unknown>;

  /** Moves the clock to the next due slot and waits — without running the scheduler — for the worker to finish a new sync. */
  const nextScheduledSync = async (waitMs: number): Promise<SyncJson> => {
    const known = new Set((await syncs()).map((s) => s.id));
    const moved = await sandbox(url, 'POST', '/sandbox/clock', { advance: 'PT6H' });
    expect(moved.status).toBe(200);
    return waitUntil('the worker\'s scheduler tick to queue and run the due sync', waitMs, async () => {
      const fresh = (await syncs()).filter((s) => !known.has(s.id));
      if (fresh.length > 1) throw new Error(`more than one sync for one due slot: ${JSON.stringify(fresh)}`);
      return fresh[0]?.state === 'done' ? fresh[0] : undefined;
    }, { intervalMs: 250, diagnose: async () => `syncs: ${JSON.stringify(await syncs())}` });
  };

  beforeAll(async () => {
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    // The mTLS port is chosen here so that the operator's entry can name the bank's endpoints before the server starts.
    const sandboxMtlsPort = await freePort();
    mtlsUrl = sandboxMtlsUrl(url, sandboxMtlsPort);
    const modelo = sandboxCatalog(url).find((e) => e.id === MODELO_ID);
    if (modelo === undefined) throw new Error('no Modelo in the sandbox catalog');
    const settings = sandboxOpenBankingSettings(pki, { publicUrl: url, mtlsUrl }, modelo.bankRef);
    const proxied: CatalogEntry = {
      ...modelo, id: PROXIED_ID, name: 'Modelo via a proxy', origin: 'file',
      openbanking: { ...settings, resourceBaseUrl: settings.resourceBaseUrl.replace(mtlsUrl, url) },
    };
    expect(proxied.openbanking?.resourceBaseUrl.startsWith(`${url}/sandbox/ob/${modelo.bankRef}/open-banking/`)).toBe(true);
    ts = await startTestServer({ publicUrl: url, sandboxMtlsPort, providers: [proxied] }, { jobs: true, timers: TIMERS });
    expect(ts.server.sandboxMtlsUrl).toBe(mtlsUrl);
    targetPort = Number(new URL(ts.baseUrl).port);
    ({ mh } = await officialClient(url, 'client_secret_basic'));
    ({ userId } = await mh.registerUser({ clientUserId: 'embedded-queue' }));
    ({ connectionId } = await connect(mh, userId, PROXIED_ID, 'user_ok'));
  }, 60_000);

  afterAll(async () => {
    for (const res of hung) res.destroy();
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
    await ts?.stop();
    await withCert.close();
  });

  it('the in-process worker queues and runs a due sync on its own', async () => {
    expect((await syncs()).map((s) => [s.method, s.state, s.fetchStatus])).toEqual([['ADD', 'done', 'success']]);
    const sync = await nextScheduledSync(TICK_WAIT_MS);
    expect(sync).toMatchObject({ action: 'auto-update', method: 'UPDATE', state: 'done', fetchStatus: 'success' });
    // It went through the one queue, the syncs table: claimed once (one attempt) and finished.
    const rows = await ts.server.db.query<{ state: string; attempts: number; lease_until: Date | null }>('select state, attempts, lease_until from syncs where id = $1', [sync.id]);
    expect(rows.rows).toEqual([{ state: 'done', attempts: 1, lease_until: null }]);
    expect(await connection()).toMatchObject({ status: 'ok', error: null });
  }, 60_000);

  it('a provider answering garbage fails that sync as an error; the worker carries on', async () => {
    mode = 'garbage';
    const sync = await nextScheduledSync(TICK_WAIT_MS);
    expect(tampered.garbage).toBeGreaterThan(0);
    expect(sync).toMatchObject({ action: 'auto-update', state: 'done', fetchStatus: 'error' });
    expect(sync.errorDetail).toEqual(expect.any(String));
    expect(await connection()).toMatchObject({ status: 'error', error: 'sync_error' });
  }, 60_000);

  it('a provider that never answers fails that sync as an error (time-out); the worker carries on', async () => {
    mode = 'hang';
    const sync = await nextScheduledSync(TIMEOUT_WAIT_MS);
    expect(tampered.hang).toBeGreaterThan(0);
    expect(sync).toMatchObject({ action: 'auto-update', state: 'done', fetchStatus: 'error' });
    expect(sync.errorDetail).toEqual(expect.any(String));
    expect(await connection()).toMatchObject({ status: 'error', error: 'sync_error' });
  }, 60_000);

  it('once the provider answers again, the next scheduled sync succeeds and the connection is ok', async () => {
    mode = 'pass';
    const sync = await nextScheduledSync(TICK_WAIT_MS);
    expect(sync).toMatchObject({ action: 'auto-update', state: 'done', fetchStatus: 'success' });
    expect(await connection()).toMatchObject({ status: 'ok', error: null });
    const all = await syncs();
    expect(all.filter((s) => s.state !== 'done')).toEqual([]);
    expect(all.map((s) => s.fetchStatus)).toEqual(['success', 'error', 'error', 'success', 'success']); // newest first
  }, 60_000);
});
