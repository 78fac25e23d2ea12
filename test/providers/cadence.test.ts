/**
 * A provider's cadence set in the providers file (SPEC section 5: "per provider, configurable"):
 * a GoCardless entry pointed at Mooring's GoCardless sandbox counterpart with 2 unattended syncs a
 * day and a 30-hour staleness window, next to the same entry without them. Read through the official
 * client: the budget and nextSyncAt follow the lower cadence, and the connection is stale after 30
 * hours while the other is still fresh.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { GC_SANDBOX_PREFIX, SANDBOX_GC_SECRET_ID, SANDBOX_GC_SECRET_KEY } from '../../src/sandbox/banks/index.ts';
import { connect, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { advanceClock, webhookClient } from '../helpers/webhooks.ts';

const HOUR_MS = 3_600_000;
const SLOW = 'GoCardless Slow Bank';
const USUAL = 'GoCardless Usual Bank';
const dir = mkdtempSync(path.join(os.tmpdir(), 'mooring-cadence-'));
let ts: TestServer;
let mh: MoneyhubClient;

function providersFile(publicUrl: string): string {
  const file = path.join(dir, 'providers.yaml');
  writeFileSync(file, [
    'defaults:',
    '  type: api',
    '  adapter: gocardless',
    '  settings:',
    `    apiUrl: ${publicUrl}${GC_SANDBOX_PREFIX}`,
    '    secretId: { env: GOCARDLESS_SECRET_ID }',
    '    secretKey: { env: GOCARDLESS_SECRET_KEY }',
    '    institutionId: MOORING_STRICT_MSTR0000',
    'providers:',
    `  - name: ${SLOW}`,
    '    unattendedSyncsPerDay: 2',
    '    staleAfterHours: 30',
    `  - name: ${USUAL}`,
    '',
  ].join('\n'));
  return file;
}

beforeAll(async () => {
  ts = await startTestServer({}, {
    providers: (urls) => loadConfig({
      MOORING_PROVIDERS_FILE: providersFile(urls.publicUrl), MOORING_SANDBOX: 'true', GOCARDLESS_SECRET_ID: SANDBOX_GC_SECRET_ID, GOCARDLESS_SECRET_KEY: SANDBOX_GC_SECRET_KEY,
    }).providers,
  });
  mh = (await webhookClient(ts.baseUrl)).mh;
});
afterAll(async () => {
  await ts?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Conn { id: string; status: string; error: string | null; connectedOn: string; lastUpdated: string | null; nextSyncAt: string | null; syncBudget: { remaining: number } }
const idOf = (name: string): string => ts.server.catalog.all().find((p) => p.name === name)?.id ?? '';

async function connectTo(name: string): Promise<() => Promise<Conn>> {
  const { userId } = await mh.registerUser({ clientUserId: `cadence-${name}` });
  const { connectionId } = await connect(mh, userId, idOf(name));
  return async () => (await mh.getUserConnections({ userId })).data.find((c) => c.id === connectionId) as unknown as Conn;
}

describe('cadence from the providers file', () => {
  it('gives the budget, nextSyncAt and staleness window the entry sets', async () => {
    const slow = await connectTo(SLOW);
    const usual = await connectTo(USUAL);
    const s = await slow();
    const u = await usual();
    // Two unattended syncs a day, one every 12 hours; the usual api cadence is 4 (GoCardless's counterpart leaves 3 after the connect sync), every 6 hours.
    expect(s.syncBudget.remaining).toBe(2);
    expect(u.syncBudget.remaining).toBe(3);
    const after = (c: Conn): number => Date.parse(c.nextSyncAt ?? '') - Date.parse(c.connectedOn);
    expect(Math.abs(after(s) - 12 * HOUR_MS)).toBeLessThan(60_000);
    expect(Math.abs(after(u) - 6 * HOUR_MS)).toBeLessThan(60_000);

    // 31 hours without a sync: past the entry's 30-hour window, within the usual 48.
    await advanceClock(ts.baseUrl, 'PT31H');
    expect(await slow()).toMatchObject({ status: 'error', error: 'resync' });
    expect(await usual()).toMatchObject({ status: 'ok', error: null });
  });
});
