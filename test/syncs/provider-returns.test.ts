/**
 * A provider that leaves the catalog and comes back (an entry removed from the providers file and
 * added again; the sandbox turned off and on): while it is gone the scheduler takes its connections
 * off the schedule (they read `never`), and once it is back they are on the schedule again and
 * synced, with no journey. Three servers in turn over one database; the GoCardless entry points at
 * Mooring's own GoCardless sandbox counterpart.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { GC_SANDBOX_PREFIX, SANDBOX_GC_SECRET_ID, SANDBOX_GC_SECRET_KEY } from '../../src/sandbox/banks/index.ts';
import { apiClient, ALL_API_SCOPES } from '../helpers/api.ts';
import { connect, officialClientFor } from '../helpers/moneyhub.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { advanceClock, runScheduler } from '../helpers/webhooks.ts';

const NAME = 'GoCardless Returning Bank';
const dir = mkdtempSync(path.join(os.tmpdir(), 'mooring-provider-returns-'));
let testDb: TestDb | null = null;
let ts: TestServer | null = null;

afterAll(async () => {
  await ts?.stop();
  await testDb?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function withEntry(urls: { publicUrl: string }) {
  const file = path.join(dir, 'providers.yaml');
  writeFileSync(file, [
    'providers:',
    `  - name: ${NAME}`,
    '    type: api',
    '    adapter: gocardless',
    '    settings:',
    `      apiUrl: ${urls.publicUrl}${GC_SANDBOX_PREFIX}`,
    '      secretId: { env: GOCARDLESS_SECRET_ID }',
    '      secretKey: { env: GOCARDLESS_SECRET_KEY }',
    '      institutionId: MOORING_STRICT_MSTR0000',
    '',
  ].join('\n'));
  return loadConfig({ MOORING_PROVIDERS_FILE: file, MOORING_SANDBOX: 'true', GOCARDLESS_SECRET_ID: SANDBOX_GC_SECRET_ID, GOCARDLESS_SECRET_KEY: SANDBOX_GC_SECRET_KEY }).providers;
}

interface Conn { id: string; status: string; lastUpdated: string | null; nextSyncAt: string | null }

describe('a provider back in the catalog', () => {
  it('its connections return to the schedule and are synced again', async () => {
    testDb = await createTestDb();
    const db = testDb;
    ts = await startTestServer({}, { testDb: db, providers: withEntry });
    const providerId = ts.server.catalog.all().find((p) => p.name === NAME)?.id ?? '';
    const client = await apiClient(ts.baseUrl, { scope: ALL_API_SCOPES });
    const { userId } = await client.mh.registerUser({ clientUserId: 'returning' });
    const { connectionId } = await connect(client.mh, userId, providerId);
    const read = async (baseUrl: string): Promise<Conn> => {
      const mh = await officialClientFor(baseUrl, client);
      return (await mh.getUserConnections({ userId })).data.find((c) => c.id === connectionId) as unknown as Conn;
    };
    expect((await read(ts.baseUrl)).nextSyncAt).not.toBeNull();
    await ts.stop();

    // The entry is gone: the scheduler takes the connection off the schedule when it comes due.
    ts = await startTestServer({}, { testDb: db });
    await advanceClock(ts.baseUrl, 'PT7H');
    await runScheduler(ts.baseUrl);
    expect(await read(ts.baseUrl)).toMatchObject({ status: 'never', nextSyncAt: null });
    await ts.stop();

    // The entry is back: the connection is on the schedule again without a journey, and its next scheduled sync runs.
    ts = await startTestServer({}, { testDb: db, providers: withEntry });
    const back = await read(ts.baseUrl);
    expect(back.nextSyncAt).not.toBeNull();
    const lastUpdated = back.lastUpdated;
    const now = await advanceClock(ts.baseUrl, 'PT7H');
    expect(Date.parse(back.nextSyncAt ?? '')).toBeLessThanOrEqual(Date.parse(now));
    const ran = (await runScheduler(ts.baseUrl)).body as { syncs: { connectionId?: string }[] };
    expect(ran.syncs.map((s) => s.connectionId)).toContain(connectionId);
    const synced = await read(ts.baseUrl);
    expect(synced.status).toBe('ok');
    expect(synced.lastUpdated).not.toBe(lastUpdated);
    expect(Date.parse(synced.lastUpdated ?? '')).toBeGreaterThan(Date.parse(back.nextSyncAt ?? '') - 1);
  }, 180_000);
});
