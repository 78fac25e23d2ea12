/**
 * A connect journey whose server is SIGKILLed during the callback (issue 7 §2): the bank has
 * exchanged its single-use code and Mooring is running the first sync (a slow bank, user_slow)
 * when the process dies. After a restart the browser retries the same callback URL (same state,
 * same code): the journey finishes with the connection it had made, the client learns it from the
 * ID token's mh:con_id, and the user has exactly one connection.
 *
 * The server is a real child process (`node src/main.ts start`) on an embedded database in a
 * temporary directory, so its data survives the kill as a real deployment's would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Browser } from '../helpers/browser.ts';
import { atRedirect, officialClient } from '../helpers/moneyhub.ts';
import { killAllMooring, spawnMooring, type MooringProcess } from '../helpers/processes.ts';
import { ADMIN_TOKEN, freePort } from '../helpers/server.ts';
import { DOMAIN_START } from '../helpers/time.ts';
import { MODELO_ID } from '../helpers/api.ts';

const START_TIMEOUT_MS = 120_000;
/** The first sync's first bank call: the connection is stored by then and the sync under way. */
const FIRST_SYNC_BANK_CALL = /"path":"\/sandbox\/ob\/modelo\/open-banking\/v3\.1\/aisp\/accounts"/;

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mooring-journey-crash-'));

afterAll(async () => {
  await killAllMooring();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('a connect journey killed during its callback', () => {
  it('can retry the same callback after a restart: one connection, and the client learns it', async () => {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const env = { PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: baseUrl, MOORING_DATA_DIR: dataDir, MOORING_SANDBOX_MTLS_PORT: String(await freePort()), MOORING_ADMIN_TOKEN: ADMIN_TOKEN, MOORING_SANDBOX_CLOCK_START: DOMAIN_START.toISOString(), LOG_LEVEL: 'info' };
    const start = async (name: string): Promise<MooringProcess> => {
      const p = spawnMooring(name, ['start'], env);
      await p.waitForOutput(/Mooring is running at/, START_TIMEOUT_MS);
      return p;
    };

    const first = await start('first');
    const { mh } = await officialClient(baseUrl, 'client_secret_basic');
    const { userId } = await mh.registerUser({ clientUserId: 'journey-crash' });
    const state = 'crash-state';
    const nonce = 'crash-nonce';
    const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: MODELO_ID, userId, state, nonce });

    // The user allows sharing and logs in at the bank as user_slow; stop before the callback.
    const browser = new Browser();
    // The journey's own callback (the bank's redirect to the fixed /connect/callback is followed to it).
    const atCallback = (u: string): boolean => atRedirect(u) || (u.startsWith(`${baseUrl}/connect/`) && /\/connect\/[^/?]+\/callback/.test(u));
    const consent = await browser.follow(url, atCallback);
    const atBank = await browser.submit(consent, {}, { button: 'allow', stopAt: atCallback });
    expect(atBank.html).toContain('name="password"');
    const backFromBank = await browser.submit(atBank, { username: 'user_slow', password: 'any-password' }, { button: 'approve', stopAt: atCallback });
    const callbackUrl = backFromBank.location;
    if (callbackUrl === null || !callbackUrl.includes('/callback')) throw new Error(`the bank did not send the user back: ${backFromBank.url}`);

    // The callback: the code is exchanged, then the first sync runs; kill the server mid-sync.
    const interrupted = browser.request(callbackUrl).catch((err: unknown) => err);
    await first.waitForOutput(FIRST_SYNC_BANK_CALL, 60_000);
    expect((await first.stop('SIGKILL')).signal).toBe('SIGKILL');
    expect(await interrupted).toBeInstanceOf(Error);

    // Restarted, the same callback URL finishes the journey instead of failing or exchanging the code again.
    await start('restarted');
    const retried = await browser.follow(callbackUrl, atRedirect);
    expect(retried.location, `${retried.status} ${retried.html.slice(0, 300)}`).not.toBeNull();
    const back = new URL(retried.location ?? '').searchParams;
    expect(back.get('error')).toBeNull();
    const tokens = await mh.exchangeCodeForTokens({ paramsFromCallback: { code: back.get('code'), state: back.get('state') }, localParams: { state, nonce, sub: userId } });
    const connectionId = tokens.claims()['mh:con_id'];
    expect(connectionId).toEqual(expect.stringMatching(new RegExp(`^${MODELO_ID}:`)));

    const { data: connections } = await mh.getUserConnections({ userId });
    expect(connections.map((c) => c.id)).toEqual([connectionId]);
    expect((await mh.getUser({ userId })).connectionIds).toEqual([connectionId]);
  }, 4 * START_TIMEOUT_MS);
});
