/**
 * The one fixed callback (SPEC section 10): every redirect-based provider sends the user back to
 * <PUBLIC_URL>/connect/callback, which finds the journey by state and hands the answer to the
 * journey's own callback, where its interaction cookie is checked. A response in the URL fragment
 * is relayed by a small page whose one script the content security policy allows by its hash.
 */
import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, type Page } from '../helpers/browser.ts';
import { atRedirect, officialClient, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';

let ts: TestServer;
let mh: MoneyhubClient;
let userId: string;

beforeAll(async () => {
  ts = await startTestServer();
  ({ mh } = await officialClient(ts.baseUrl, 'client_secret_basic'));
  ({ userId } = await mh.registerUser({ clientUserId: 'fixed-callback' }));
});
afterAll(async () => ts.stop());

const fixedCallback = (): string => `${ts.baseUrl}/connect/callback`;
const journeyCallback = /^http:\/\/127\.0\.0\.1:\d+\/connect\/([A-Za-z0-9_-]+)\/callback/;

interface AtBankAnswer {
  browser: Browser;
  /** The bank's redirect back to Mooring. */
  answer: Page;
  state: string;
  nonce: string;
}

/** A connect journey in a new browser, up to the bank's redirect back (not followed). */
async function untilTheBankAnswers(): Promise<AtBankAnswer> {
  const state = `s-${Math.random().toString(36).slice(2)}`;
  const nonce = `n-${Math.random().toString(36).slice(2)}`;
  const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: MODELO_ID, userId, state, nonce });
  const browser = new Browser();
  const stop = (u: string): boolean => atRedirect(u) || u.startsWith(fixedCallback());
  const consent = await browser.follow(url, stop);
  const atBank = await browser.submit(consent, {}, { button: 'allow', stopAt: stop });
  const answer = await browser.submit(atBank, { username: 'user_ok', password: 'any-password' }, { button: 'approve', stopAt: stop });
  return { browser, answer, state, nonce };
}

/** The client's side: the code of the redirect back to it exchanged for tokens naming the connection. */
async function connectionOf(redirect: string | null, j: AtBankAnswer): Promise<unknown> {
  expect(redirect).not.toBeNull();
  const back = new URL(redirect ?? '').searchParams;
  expect(back.get('error')).toBeNull();
  const tokens = await mh.exchangeCodeForTokens({ paramsFromCallback: { code: back.get('code'), state: back.get('state') }, localParams: { state: j.state, nonce: j.nonce, sub: userId } });
  return tokens.claims()['mh:con_id'];
}

describe('the fixed callback', () => {
  it('is where the bank sends the user back; it answers 303 to the journey\'s own callback with the same query, which finishes the journey', async () => {
    const j = await untilTheBankAnswers();
    const answerUrl = j.answer.location ?? '';
    expect(answerUrl.startsWith(`${fixedCallback()}?`), answerUrl).toBe(true);
    const handed = await j.browser.request(answerUrl);
    expect(handed.status).toBe(303);
    expect(handed.location ?? '').toMatch(journeyCallback);
    expect(new URL(handed.location ?? '').search).toBe(new URL(answerUrl).search);
    const finished = await j.browser.follow(handed.location ?? '', atRedirect);
    expect(await connectionOf(finished.location, j)).toEqual(expect.stringMatching(new RegExp(`^${MODELO_ID}:`)));
  });

  it('finds the journey by the state inside a JARM response (response=<JWT>)', async () => {
    const j = await untilTheBankAnswers();
    const answer = new URL(j.answer.location ?? '').searchParams;
    const state = answer.get('state') ?? decodeJwt(answer.get('response') ?? '').state;
    expect(typeof state).toBe('string');
    // Only the routing reads it; the adapter verifies the JWT against the bank's keys.
    const jwt = await new SignJWT({ state: String(state), code: 'unused' }).setProtectedHeader({ alg: 'HS256' }).sign(randomBytes(32));
    const handed = await fetch(`${fixedCallback()}?response=${jwt}`, { redirect: 'manual' });
    expect(handed.status).toBe(303);
    expect(handed.headers.get('location') ?? '').toMatch(journeyCallback);
  });

  it('answers an unknown or missing state with a 400 page saying the link has expired', async () => {
    for (const query of ['?state=no-such-state&code=abc', '?code=abc', '?error=access_denied']) {
      const res = await fetch(`${fixedCallback()}${query}`, { redirect: 'manual' });
      expect(res.status, query).toBe(400);
      expect(res.headers.get('content-type')).toContain('text/html');
      const text = await res.text();
      expect(text).toContain('This link has expired');
      expect(text).toContain('Go back to the app');
    }
    const posted = await fetch(fixedCallback(), {
      method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'state=no-such-state&code=abc',
    });
    expect(posted.status).toBe(400);
    expect(await posted.text()).toContain('This link has expired');
  });

  it('sends another browser with the same answer to the journey, whose cookie check refuses it; the right browser still finishes', async () => {
    const j = await untilTheBankAnswers();
    const stranger = new Browser();
    const handed = await stranger.request(j.answer.location ?? '');
    expect(handed.status).toBe(303);
    expect(handed.location ?? '').toMatch(journeyCallback);
    const refused = await stranger.follow(handed.location ?? '');
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('This page has expired');
    const finished = await j.browser.follow(j.answer.location ?? '', atRedirect);
    expect(await connectionOf(finished.location, j)).toEqual(expect.stringMatching(new RegExp(`^${MODELO_ID}:`)));
  });
});

describe('the relay page for answers in the URL fragment', () => {
  it('GET /connect/callback without a query answers a page with one script, allowed by its hash and nothing else, and a noscript text', async () => {
    const res = await fetch(fixedCallback());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1] ?? '');
    expect(scripts).toHaveLength(1);
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(scripts[0]).toContain('location.hash');
    expect(html).toMatch(/<form id="relay" method="post" action="\/connect\/callback">/);
    expect(html).toMatch(/<noscript>[\s\S]*JavaScript[\s\S]*go back to the app and start again[\s\S]*<\/noscript>/);

    const csp = res.headers.get('content-security-policy') ?? '';
    const directives = new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...sources]) => [name ?? '', sources]));
    const hash = createHash('sha256').update(scripts[0] ?? '', 'utf8').digest('base64');
    expect(directives.get('script-src')).toEqual([`'sha256-${hash}'`]);
    expect(directives.get('default-src')).toEqual(["'none'"]);
    expect(csp).not.toContain('unsafe-eval');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    // Other pages keep the policy without scripts.
    const other = await fetch(`${fixedCallback()}?state=unknown`);
    expect(other.headers.get('content-security-policy') ?? '').not.toContain('script-src');
  });

  it('POST /connect/callback with the answer answers 307 to the journey\'s callback, which takes the same form and finishes the journey', async () => {
    const j = await untilTheBankAnswers();
    const answer = new URL(j.answer.location ?? '').searchParams;
    const relayed = await j.browser.request(fixedCallback(), { method: 'POST', body: answer });
    expect(relayed.status).toBe(307);
    const target = relayed.location ?? '';
    expect(target).toMatch(journeyCallback);
    expect(new URL(target).search).toBe('');
    // What a browser does with a 307: the same method and form to the new place.
    const finished = await j.browser.request(target, { method: 'POST', body: answer });
    expect(finished.status).toBe(303);
    const back = finished.location !== null && atRedirect(finished.location) ? finished : await j.browser.follow(finished.location ?? '', atRedirect);
    expect(await connectionOf(back.location, j)).toEqual(expect.stringMatching(new RegExp(`^${MODELO_ID}:`)));
  });
});
