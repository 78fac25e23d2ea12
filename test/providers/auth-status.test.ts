/**
 * A provider's `status.auth` in the catalog (SPEC section 5): the share of the connect and repair
 * journeys that reached it in the last hour and that it granted. Two GoCardless entries point at
 * Mooring's GoCardless sandbox counterpart, one with the wrong secret key (every journey fails at
 * the bank's API): the official client's catalog shows that one TEMPORARILY_UNAVAILABLE, the other
 * (where a user also refuses and one leaves unfinished, which are no failures of the provider) and
 * the sandbox providers AVAILABLE, and an hour later the failures are out of the window. Callbacks
 * the browser brings back malformed or forged (any client can send those) are never counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goCardlessEntry } from '../helpers/gocardless.ts';
import { Browser } from '../helpers/browser.ts';
import { atRedirect, connect, runJourney, type MoneyhubClient } from '../helpers/moneyhub.ts';
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

  it('malformed or forged callbacks fail their journeys but leave status.auth AVAILABLE', async () => {
    await advanceClock(ts.baseUrl, 'PT61M');
    const modelo = ts.server.catalog.all().find((p) => p.name === 'Modelo Open Banking Mock');
    if (modelo === undefined) throw new Error('no Modelo');
    const atCallback = (u: string): boolean => u.includes('/connect/callback');
    /** Runs a journey to the bank's answer, then brings back `tamper(answer)` instead; answers the client's error. */
    async function tamperedJourney(bankId: string, tamper: (answer: URL) => URL, i: number): Promise<string | null> {
      const { userId } = await mh.registerUser({ clientUserId: `tamper-${bankId.slice(0, 8)}-${i}` });
      const url = await mh.getAuthorizeUrlForCreatedUser({ bankId, userId, state: `st${i}`, nonce: `nt${i}` });
      const browser = new Browser();
      const consent = await browser.follow(url, atRedirect);
      const atBank = await browser.submit(consent, {}, { button: 'allow', stopAt: atRedirect });
      const answered = await browser.submit(atBank, { username: 'user_ok', password: 'any-password' }, { button: 'approve', stopAt: atCallback });
      if (answered.location === null || !atCallback(answered.location)) throw new Error(`no answer from the bank: ${answered.status}`);
      const back = await browser.follow(tamper(new URL(answered.location)).toString(), atRedirect);
      expect((await mh.getUserConnections({ userId })).data).toEqual([]);
      return new URL(back.location ?? '').searchParams.get('error');
    }
    const withParams = (answer: URL, change: (p: URLSearchParams) => void): URL => {
      const out = new URL(answer);
      change(out.searchParams);
      return out;
    };
    for (let i = 0; i < 2; i++) {
      // GoCardless: the journey found by its reference as `state`, with a `ref` that is not it; and a forged technical error.
      expect(await tamperedJourney(idOf(GOOD), (a) => withParams(a, (p) => { p.set('state', p.get('ref') ?? ''); p.set('ref', 'not-the-reference'); }), i)).toBe('temporarily_unavailable');
      expect(await tamperedJourney(idOf(GOOD), (a) => withParams(a, (p) => p.set('error', 'TechnicalError')), 10 + i)).toBe('temporarily_unavailable');
      // Open Banking (JARM): the bank's signed response with its signature broken.
      expect(await tamperedJourney(modelo.id, (a) => withParams(a, (p) => {
        const [header, payload, signature = ''] = (p.get('response') ?? '').split('.');
        p.set('response', `${header ?? ''}.${payload ?? ''}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`);
      }), 20 + i)).toBe('temporarily_unavailable');
    }
    const auth = await authStatus();
    expect(auth[GOOD]).toBe('AVAILABLE');
    expect(auth['Modelo Open Banking Mock']).toBe('AVAILABLE');
  });
});
