/**
 * A provider's `status.auth` in the catalog (SPEC section 5): the share of the connect and repair
 * journeys that reached it in the last hour and that it granted. Two GoCardless entries point at
 * Mooring's GoCardless sandbox counterpart, one with the wrong secret key (every journey fails at
 * the bank's API): the official client's catalog shows that one TEMPORARILY_UNAVAILABLE, the other
 * (where a user also refuses and one leaves unfinished, which are no failures of the provider) and
 * the sandbox providers AVAILABLE, and an hour later the failures are out of the window.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goCardlessEntry } from '../helpers/gocardless.ts';
import { connect, runJourney, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { advanceClock, webhookClient } from '../helpers/webhooks.ts';

const GOOD = 'GoCardless Good Bank';
const BROKEN = 'GoCardless Broken Bank';
let ts: TestServer;
let mh: MoneyhubClient;

beforeAll(async () => {
  ts = await startTestServer({}, {
    providers: (urls) => [goCardlessEntry(urls, { name: GOOD }), goCardlessEntry(urls, { name: BROKEN, secretKey: 'not-the-secret-key-of-this-account' })],
  });
  mh = (await webhookClient(ts.baseUrl)).mh;
});
afterAll(async () => {
  await ts?.stop();
});

const idOf = (name: string): string => ts.server.catalog.all().find((p) => p.name === name)?.id ?? '';
async function authStatus(): Promise<Record<string, string>> {
  const listed = (await mh.listConnections()) as unknown as { name: string; status: { auth: string; sync: string } }[];
  return Object.fromEntries(listed.map((c) => [c.name, c.status.auth]));
}

describe('status.auth in the catalog', () => {
  it('is AVAILABLE everywhere before any journey', async () => {
    expect(new Set(Object.values(await authStatus()))).toEqual(new Set(['AVAILABLE']));
  });

  it('shows failed journeys at one provider, and not refusals or abandoned journeys at another; the window is an hour', async () => {
    for (let i = 0; i < 2; i++) {
      const { userId } = await mh.registerUser({ clientUserId: `broken-${i}` });
      const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: idOf(BROKEN), userId, state: `sb${i}`, nonce: `nb${i}` });
      expect((await runJourney(url)).get('error')).toBe('temporarily_unavailable');
    }
    const { userId } = await mh.registerUser({ clientUserId: 'good' });
    await connect(mh, userId, idOf(GOOD));
    for (const username of ['user_rejected', 'user_unfinished']) {
      const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: idOf(GOOD), userId, state: `s-${username}`, nonce: `n-${username}` });
      expect((await runJourney(url, username)).get('error')).toBe('access_denied');
    }

    const auth = await authStatus();
    expect(auth[BROKEN]).toBe('TEMPORARILY_UNAVAILABLE');
    expect(auth[GOOD]).toBe('AVAILABLE');
    expect(auth['Modelo Open Banking Mock']).toBe('AVAILABLE');
    // The same measure in every catalog list.
    expect(((await mh.listAPIConnections()) as unknown as { name: string; status: { auth: string } }[]).find((c) => c.name === BROKEN)?.status.auth).toBe('TEMPORARILY_UNAVAILABLE');

    await advanceClock(ts.baseUrl, 'PT61M');
    expect((await authStatus())[BROKEN]).toBe('AVAILABLE');
  });
});
