import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, generateKeyPair, jwtVerify } from 'jose';
import type { FetchResult, JourneyStep } from '../../src/providers/provider.ts';
import { setSandboxBehaviour } from '../../src/sandbox/banks/index.ts';
import { fapiBankClient, type FapiBankClient } from '../helpers/fapi-client.ts';
import { advanceDays, Browser, CALLBACK_URL, connectOb, DAY_MS, declareOutage, errorKind, fetchData, readForm, retire, startSandbox, type Harness } from './harness.ts';

let h: Harness;
/** Raw FAPI calls to the Modelo bank with the sandbox client certificate. */
let bank: FapiBankClient;
beforeAll(async () => {
  h = await startSandbox();
  bank = await fapiBankClient(h.pki, { publicUrl: h.url, mtlsUrl: h.mtlsUrl }, 'modelo');
});
afterAll(async () => {
  await bank.close();
  await h.close();
});

const MODELO = 'Modelo Open Banking Mock';
const ids = (r: FetchResult): string[] => r.transactions.map((t) => t.providerTransactionId).sort();
const near = (a: Date | null, b: Date, ms = 5_000): boolean => a !== null && Math.abs(a.getTime() - b.getTime()) < ms;

/** A browser at the bank's login page for a new journey (state `state`): the page's URL and HTML. */
async function atLoginPage(state: string): Promise<{ start: JourneyStep & { kind: 'redirect' }; browser: Browser; url: string; html: string }> {
  const modelo = h.provider(MODELO);
  const start = await h.adapters.openbanking.startAuthorisation({ provider: modelo, callbackUrl: h.callbackUrl, state, consentExpiresAt: null });
  if (start.kind !== 'redirect') throw new Error('expected redirect');
  const browser = new Browser();
  const page = await browser.follow(start.url, h.callbackUrl);
  expect(page.res?.status).toBe(200);
  expect(new URL(page.url).pathname).toMatch(/^\/sandbox\/ob\/modelo\/login\/[^/]+$/);
  return { start, browser, url: page.url, html: (await page.res?.text()) ?? '' };
}

/** The JARM response a callback URL carries, verified against the bank's keys (issuer, audience, signature). */
async function jarm(callback: URL): Promise<Record<string, unknown>> {
  const response = callback.searchParams.get('response');
  expect(response).toBeTruthy();
  const { payload } = await jwtVerify(response as string, createRemoteJWKSet(new URL(`${bank.issuer}/jwks`)), { issuer: bank.issuer, audience: 'mooring' });
  return payload;
}

describe('Open Banking sandbox bank and adapter', () => {
  it('runs the connect journey through the bank login page and back to the callback with a code', async () => {
    const modelo = h.provider(MODELO);
    const j = await connectOb(h, modelo, 'user_ok');
    if (j.start.kind !== 'redirect') throw new Error('expected redirect');
    // The start URL is the bank's authorisation endpoint with a signed request object (PS256, PKCE, state, the callback).
    const start = new URL(j.start.url);
    expect(`${start.origin}${start.pathname}`).toBe(`${h.url}/sandbox/ob/modelo/auth`);
    expect(start.searchParams.get('client_id')).toBe('mooring');
    const request = start.searchParams.get('request') ?? '';
    expect(decodeProtectedHeader(request).alg).toBe('PS256');
    const state = (j.start.pending as { state: string }).state;
    expect(decodeJwt(request)).toMatchObject({ client_id: 'mooring', redirect_uri: h.callbackUrl, state, code_challenge_method: 'S256', response_type: 'code' });
    expect(new URL(j.loginUrl).pathname).toMatch(/^\/sandbox\/ob\/modelo\/login\/[^/]+$/);
    expect(j.loginPage).toContain(MODELO);
    expect(readForm(j.loginPage, j.loginUrl).inputs).toEqual(expect.arrayContaining(['username', 'password']));
    expect(j.loginPage).toMatch(/<button type="submit" name="decision" value="approve">Approve<\/button>/);
    expect(j.loginPage).toMatch(/value="cancel">Cancel</);
    // The callback carries a JARM response (no bare code) whose payload has a code and the journey's state.
    expect(j.callback.searchParams.get('code')).toBeNull();
    const payload = await jarm(j.callback);
    expect(payload.code).toBeTruthy();
    expect(payload.state).toBe(state);
    expect(j.done.ref).toMatch(/^aac-/);
    expect(j.done.grant).toMatchObject({ consentId: j.done.ref });
  });

  it('user_ok: two accounts and 30 transactions; the same ids on re-fetch; new ones as the clock moves', async () => {
    const modelo = h.provider(MODELO);
    const { done } = await connectOb(h, modelo, 'user_ok');
    const first = await fetchData(h, 'openbanking', modelo, done.grant, { attended: true });
    expect(first.partial).toBe(false);
    expect(first.accounts.map((a) => a.type).sort()).toEqual(['cash:current', 'savings']);
    expect(first.transactions).toHaveLength(30);
    expect(near(first.asOf, h.clock.now())).toBe(true);
    for (const t of first.transactions) {
      expect(Number.isInteger(t.amountMinor)).toBe(true);
      expect(t.date.getTime()).toBeLessThanOrEqual(h.clock.now().getTime());
    }
    const again = await fetchData(h, 'openbanking', modelo, first.grant);
    expect(ids(again)).toEqual(ids(first));
    expect(again.accounts.map((a) => a.balanceMinor)).toEqual(first.accounts.map((a) => a.balanceMinor));

    advanceDays(h, 3);
    const later = await fetchData(h, 'openbanking', modelo, again.grant);
    expect(later.transactions).toHaveLength(33);
    expect(ids(later)).toEqual(expect.arrayContaining(ids(first)));
    expect(near(later.asOf, h.clock.now())).toBe(true);
    // Balances move by exactly the new transactions.
    for (const account of later.accounts) {
      const before = first.accounts.find((a) => a.providerAccountId === account.providerAccountId);
      const added = later.transactions.filter((t) => t.providerAccountId === account.providerAccountId && !ids(first).includes(t.providerTransactionId));
      expect(account.balanceMinor - (before?.balanceMinor ?? 0)).toBe(added.reduce((s, t) => s + t.amountMinor, 0));
    }
    const since = await fetchData(h, 'openbanking', modelo, later.grant, { since: first.asOf });
    expect(since.transactions).toHaveLength(3);
  });

  it('cancelling at the bank ends the journey as journey_rejected', async () => {
    const modelo = h.provider(MODELO);
    const { start, browser, url, html } = await atLoginPage('s1');
    const form = readForm(html, url);
    const answer = await browser.follow(form.action, h.callbackUrl, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.hidden, decision: 'cancel' }).toString(),
    });
    expect(answer.res).toBeNull();
    const callback = new URL(answer.url);
    expect(`${callback.origin}${callback.pathname}`).toBe(h.callbackUrl);
    const payload = await jarm(callback);
    expect(payload.error).toBe('access_denied');
    expect(payload.state).toBe('s1');
    const input = Object.fromEntries(callback.searchParams);
    expect(await errorKind(h.adapters.openbanking.completeAuthorisation({ provider: modelo, pending: start.pending, input, callbackUrl: h.callbackUrl }))).toBe('journey_rejected');
  });

  it('re-shows the login page with an error when no username is typed', async () => {
    const { browser, url, html } = await atLoginPage('s2');
    const form = readForm(html, url);
    const answer = await browser.go(form.action, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.hidden, username: ' ', decision: 'approve' }).toString(),
    });
    expect(answer.status).toBe(400);
    const again = await answer.text();
    expect(again).toContain('Enter your username.');
    // The same login form again, posting to the same place.
    expect(readForm(again, url)).toMatchObject({ action: form.action, inputs: expect.arrayContaining(['username', 'password']) });
  });

  it('user_partial: every sync returns the accounts but misses the second account\'s transactions', async () => {
    const modelo = h.provider(MODELO);
    const { done } = await connectOb(h, modelo, 'user_partial');
    for (let i = 0; i < 2; i += 1) {
      const r = await fetchData(h, 'openbanking', modelo, done.grant);
      expect(r.partial).toBe(true);
      expect(r.partialDetail).toContain('transactions');
      expect(r.accounts).toHaveLength(2);
      expect(new Set(r.transactions.map((t) => t.providerAccountId)).size).toBe(1);
    }
  });

  it('user_flaky: every other sync fails as unavailable', async () => {
    const modelo = h.provider(MODELO);
    const { done } = await connectOb(h, modelo, 'user_flaky');
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i += 1) {
      outcomes.push(await fetchData(h, 'openbanking', modelo, done.grant).then(() => 'ok', (e: { kind: string }) => e.kind));
      advanceDays(h, 0.25);
    }
    expect(outcomes).toEqual(['ok', 'unavailable', 'ok', 'unavailable']);
  });

  it('user_mfa: unattended syncs need the customer (mfa_required); attended ones succeed', async () => {
    const modelo = h.provider(MODELO);
    const { done } = await connectOb(h, modelo, 'user_mfa');
    expect((await fetchData(h, 'openbanking', modelo, done.grant, { attended: true })).transactions).toHaveLength(30);
    expect(await errorKind(fetchData(h, 'openbanking', modelo, done.grant, { attended: false }))).toBe('mfa_required');
    expect((await fetchData(h, 'openbanking', modelo, done.grant, { attended: true })).partial).toBe(false);
  });

  it('user_revoked: the first sync succeeds, later ones are refused as credentials', async () => {
    const modelo = h.provider(MODELO);
    const { done } = await connectOb(h, modelo, 'user_revoked');
    expect((await fetchData(h, 'openbanking', modelo, done.grant)).accounts).toHaveLength(2);
    expect(await errorKind(fetchData(h, 'openbanking', modelo, done.grant))).toBe('credentials');
    expect(await errorKind(fetchData(h, 'openbanking', modelo, done.grant, { attended: true }))).toBe('credentials');
  });

  it('user_stale: syncs succeed but the data stays as of the connection', async () => {
    const modelo = h.provider(MODELO);
    const before = h.clock.now();
    const { done } = await connectOb(h, modelo, 'user_stale');
    const after = h.clock.now();
    const first = await fetchData(h, 'openbanking', modelo, done.grant);
    expect(first.asOf!.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1000);
    expect(first.asOf!.getTime()).toBeLessThanOrEqual(after.getTime());
    advanceDays(h, 4);
    const later = await fetchData(h, 'openbanking', modelo, first.grant);
    expect(later.partial).toBe(false);
    expect(later.asOf).toEqual(first.asOf);
    expect(ids(later)).toEqual(ids(first));
  });

  it('an unknown username behaves like user_ok', async () => {
    const modelo = h.provider(MODELO);
    const { done } = await connectOb(h, modelo, 'jane.doe');
    for (let i = 0; i < 3; i += 1) expect((await fetchData(h, 'openbanking', modelo, done.grant)).transactions).toHaveLength(30);
  });

  it('setSandboxBehaviour switches an existing consent by its ref', async () => {
    const modelo = h.provider(MODELO);
    const { done } = await connectOb(h, modelo, 'user_ok');
    await fetchData(h, 'openbanking', modelo, done.grant);
    expect(await setSandboxBehaviour(h.db, done.ref, 'user_revoked')).toBe(true);
    expect(await errorKind(fetchData(h, 'openbanking', modelo, done.grant))).toBe('credentials');
    expect(await setSandboxBehaviour(h.db, done.ref, 'user_partial')).toBe(true);
    expect((await fetchData(h, 'openbanking', modelo, done.grant)).partial).toBe(true);
    expect(await setSandboxBehaviour(h.db, 'aac-unknown', 'user_ok')).toBe(false);
    await expect(setSandboxBehaviour(h.db, done.ref, 'user_nonsense')).rejects.toMatchObject({ statusCode: 400, code: 'invalid_username' });
  });

  it('refreshes an expired access token before fetching, and a rejected one after a 401', async () => {
    const modelo = h.provider(MODELO);
    const { done } = await connectOb(h, modelo, 'user_ok');
    const expired = { ...done.grant, accessTokenExpiresAt: new Date(Date.now() - 1000).toISOString() };
    const r1 = await fetchData(h, 'openbanking', modelo, expired);
    expect(r1.grant.accessToken).not.toBe(done.grant.accessToken);
    expect(Date.parse(String(r1.grant.accessTokenExpiresAt))).toBeGreaterThan(Date.now());
    // The bank rotates refresh tokens: the grant to keep is the one the fetch returns.
    expect(r1.grant.refreshToken).toBeTruthy();
    expect(r1.grant.refreshToken).not.toBe(done.grant.refreshToken);
    const rejected = { ...r1.grant, accessToken: 'not-a-token' };
    const r2 = await fetchData(h, 'openbanking', modelo, rejected);
    expect(r2.transactions).toHaveLength(30);
    expect(r2.grant.accessToken).not.toBe('not-a-token');
    expect(r2.grant.refreshToken).not.toBe(r1.grant.refreshToken);
    const hopeless = { ...r2.grant, accessToken: 'not-a-token', refreshToken: 'not-a-refresh-token' };
    expect(await errorKind(fetchData(h, 'openbanking', modelo, hopeless))).toBe('credentials');
    // A spent refresh token is refused too.
    expect(await errorKind(fetchData(h, 'openbanking', modelo, { ...r2.grant, accessToken: 'not-a-token', refreshToken: done.grant.refreshToken ?? null }))).toBe('credentials');
  });

  it('revoking withdraws the consent at the bank: later syncs are refused', async () => {
    const modelo = h.provider(MODELO);
    const { done } = await connectOb(h, modelo, 'user_ok');
    await h.adapters.openbanking.revoke(modelo, done.grant);
    expect(await errorKind(fetchData(h, 'openbanking', modelo, done.grant))).toBe('credentials');
    await h.adapters.openbanking.revoke(modelo, done.grant);
  });

  it('the consent expires with the domain clock; providers without expiry keep going', async () => {
    const modelo = h.provider(MODELO);
    const { done } = await connectOb(h, modelo, 'user_ok');
    const handelsbanken = h.provider('Handelsbanken');
    const open = await connectOb(h, handelsbanken, 'user_ok', { consentExpiresAt: null });
    advanceDays(h, 91);
    expect(await errorKind(fetchData(h, 'openbanking', modelo, done.grant))).toBe('consent_expired');
    expect((await fetchData(h, 'openbanking', handelsbanken, open.done.grant)).accounts).toHaveLength(2);
  });

  it('reauthorising creates a new consent with the same account and transaction ids and withdraws the old one', async () => {
    const nationwide = h.provider('Nationwide Open Banking');
    const first = await connectOb(h, nationwide, 'user_ok');
    const before = await fetchData(h, 'openbanking', nationwide, first.done.grant);
    const again = await connectOb(h, nationwide, 'user_ok', { existingGrant: first.done.grant });
    expect(again.done.ref).not.toBe(first.done.ref);
    const after = await fetchData(h, 'openbanking', nationwide, again.done.grant);
    expect(after.accounts.map((a) => a.providerAccountId).sort()).toEqual(before.accounts.map((a) => a.providerAccountId).sort());
    expect(ids(after)).toEqual(expect.arrayContaining(ids(before)));
    expect(await errorKind(fetchData(h, 'openbanking', nationwide, first.done.grant))).toBe('credentials');
  });

  it('a declared outage makes every call answer 503 (unavailable) until the domain clock passes it', async () => {
    const pensionbee = h.provider('PensionBee');
    const { done } = await connectOb(h, pensionbee, 'user_ok', { consentExpiresAt: null });
    await declareOutage(h, pensionbee, new Date(h.clock.now().getTime() + 2 * 3_600_000));
    expect(await errorKind(fetchData(h, 'openbanking', pensionbee, done.grant))).toBe('unavailable');
    expect(await errorKind(h.adapters.openbanking.startAuthorisation({ provider: pensionbee, callbackUrl: CALLBACK_URL, state: 's', consentExpiresAt: null }))).toBe('unavailable');
    expect((await fetch(`${pensionbee.baseUrl}/auth?client_id=mooring`)).status).toBe(503);
    const pensionbeeBank = await fapiBankClient(h.pki, { publicUrl: h.url, mtlsUrl: h.mtlsUrl }, pensionbee.bankRef);
    expect((await pensionbeeBank.call('GET', `${pensionbeeBank.aisp}/accounts`, { headers: { authorization: `Bearer ${String(done.grant.accessToken)}` } })).status).toBe(503);
    await pensionbeeBank.close();
    advanceDays(h, 1 / 8);
    expect((await fetchData(h, 'openbanking', pensionbee, done.grant)).accounts).toHaveLength(2);
  });

  it('a retired provider answers 410 to everything (unavailable)', async () => {
    const socgen = h.provider('Société Générale');
    const { done } = await connectOb(h, socgen, 'user_ok', { consentExpiresAt: null });
    await retire(h, socgen);
    const socgenBank = await fapiBankClient(h.pki, { publicUrl: h.url, mtlsUrl: h.mtlsUrl }, socgen.bankRef);
    expect((await socgenBank.call('GET', `${socgenBank.aisp}/accounts`, { headers: { authorization: `Bearer ${String(done.grant.accessToken)}` } })).status).toBe(410);
    expect((await socgenBank.token({ grant_type: 'client_credentials', scope: 'accounts' })).status).toBe(410);
    expect((await fetch(`${socgen.baseUrl}/.well-known/openid-configuration`)).status).toBe(410);
    await socgenBank.close();
    expect(await errorKind(fetchData(h, 'openbanking', socgen, done.grant))).toBe('unavailable');
    await h.adapters.openbanking.revoke(socgen, done.grant);
  });

  it('speaks UK Open Banking: consents, errors and as-of metadata', async () => {
    // A client assertion signed with a key the bank does not know for Mooring: invalid_client.
    const stranger = await generateKeyPair('PS256');
    const wrong = await bank.token({ grant_type: 'client_credentials', scope: 'accounts' }, { key: { key: stranger.privateKey, kid: 'stranger' } });
    expect(wrong.status).toBe(401);
    expect(wrong.json()).toMatchObject({ error: 'invalid_client' });
    const token = await bank.clientToken();
    const json = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const created = await bank.call('POST', `${bank.aisp}/account-access-consents`, {
      headers: json,
      body: JSON.stringify({ Data: { Permissions: ['ReadAccountsBasic', 'ReadBalances'], ExpirationDateTime: new Date(h.clock.now().getTime() + DAY_MS).toISOString() }, Risk: {} }),
    });
    expect(created.status, created.text).toBe(201);
    const consent = created.json() as { Data: { ConsentId: string; Status: string } };
    expect(consent.Data.Status).toBe('AwaitingAuthorisation');
    const read = await bank.call('GET', `${bank.aisp}/account-access-consents/${consent.Data.ConsentId}`, { headers: { authorization: `Bearer ${token}` } });
    expect(read.status).toBe(200);
    expect((read.json() as { Data: { ConsentId: string } }).Data.ConsentId).toBe(consent.Data.ConsentId);
    const unknown = await bank.call('GET', `${bank.aisp}/account-access-consents/aac-unknown`, { headers: { authorization: `Bearer ${token}` } });
    expect(unknown.status).toBe(400);
    expect(unknown.json()).toMatchObject({ Errors: [{ ErrorCode: 'UK.OBIE.Resource.NotFound' }] });
    const bad = await bank.call('POST', `${bank.aisp}/account-access-consents`, {
      headers: json,
      body: JSON.stringify({ Data: { Permissions: ['ReadEverything'] }, Risk: {} }),
    });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ Errors: [{ ErrorCode: 'UK.OBIE.Field.Invalid' }] });
    // No token (or a client-credentials one, which authorises no account data): 401 without a body.
    const anonymous = await bank.call('GET', `${bank.aisp}/accounts`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.text).toBe('');
    expect((await bank.call('GET', `${bank.aisp}/accounts`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
  });
});

describe('Open Banking transactions window', () => {
  it('serves transactions between fromBookingDateTime and toBookingDateTime with LastAvailableDateTime', async () => {
    const modelo = h.provider(MODELO);
    const { done } = await connectOb(h, modelo, 'user_ok');
    const all = await fetchData(h, 'openbanking', modelo, done.grant);
    const account = all.accounts[0]!.providerAccountId;
    const from = new Date(h.clock.now().getTime() - 10 * DAY_MS);
    const url = `${bank.aisp}/accounts/${account}/transactions?fromBookingDateTime=${encodeURIComponent(from.toISOString())}`;
    // The access token is bound to the sandbox client certificate: the call goes over mutual TLS with it.
    const res = await bank.call('GET', url, { headers: { authorization: `Bearer ${String(all.grant.accessToken)}` } });
    expect(res.status, res.text).toBe(200);
    const body = res.json() as { Data: { Transaction: { BookingDateTime: string }[] }; Meta: { LastAvailableDateTime: string } };
    expect(body.Data.Transaction.length).toBeGreaterThan(0);
    expect(body.Data.Transaction.every((t) => Date.parse(t.BookingDateTime) >= from.getTime())).toBe(true);
    expect(near(new Date(body.Meta.LastAvailableDateTime), h.clock.now())).toBe(true);
  });
});
