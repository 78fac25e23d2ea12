/**
 * The connect journey in a real browser (Debian's Chromium): Mooring's consent page, the sandbox
 * bank's login page, back to the app. Skipped where Chromium is not installed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { officialClient, REDIRECT_URI, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { configuredSandboxBank } from '../helpers/fapi.ts';

const CHROMIUM = '/usr/bin/chromium';
const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';
const HYBRID_BANK = 'Hybrid Test Bank';

describe.skipIf(!fs.existsSync(CHROMIUM))('connect journey in a real browser', () => {
  let ts: TestServer;
  let mh: MoneyhubClient;
  let browser: Browser;

  beforeAll(async () => {
    // A second bank as an operator would configure it: the sandbox bank answering `code id_token` (the fragment).
    ts = await startTestServer({}, { providers: (urls) => [configuredSandboxBank(urls, { name: HYBRID_BANK, settings: { responseType: 'code id_token' } })] });
    ({ mh } = await officialClient(ts.baseUrl, 'client_secret_basic'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await ts?.stop();
  });

  it('lets a user allow access, log in at the bank and return to the app with a working code', async () => {
    const user = await mh.registerUser({ clientUserId: 'browser-user' });
    const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: MODELO_ID, userId: user.userId, state: 'st-1', nonce: 'n-1' });
    const page = await browser.newPage();
    let callback: URL | null = null;
    await page.route(`${REDIRECT_URI}**`, async (route) => {
      callback = new URL(route.request().url());
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>Back in the app</h1>' });
    });

    await page.goto(url);
    expect(await page.locator('h1').innerText()).toBe('Connect Modelo Open Banking Mock');
    expect(await page.locator('body').innerText()).toContain('would like to connect to Modelo Open Banking Mock');
    await page.screenshot({ path: path.join(os.tmpdir(), 'mooring-consent.png') });
    await page.getByRole('button', { name: 'Allow' }).click();

    await page.waitForURL(/\/sandbox\/ob\/modelo\/login\//);
    await page.screenshot({ path: path.join(os.tmpdir(), 'mooring-bank-login.png') });
    await page.fill('input[name="username"]', 'user_ok');
    await page.fill('input[name="password"]', 'secret');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForSelector('text=Back in the app');

    expect(callback).not.toBeNull();
    const params = (callback as unknown as URL).searchParams;
    expect(params.get('state')).toBe('st-1');
    const tokens = await mh.exchangeCodeForTokens({
      paramsFromCallback: { code: params.get('code'), state: params.get('state') },
      localParams: { state: 'st-1', nonce: 'n-1', sub: user.userId },
    });
    const connectionId = tokens.claims()['mh:con_id'];
    const { data } = await mh.getUserConnections({ userId: user.userId });
    expect(data.map((c) => c.id)).toEqual([connectionId]);
    expect(data[0]?.status).toBe('ok');
  });

  it('returns the user to the app with access_denied when they cancel on the consent page', async () => {
    const user = await mh.registerUser({ clientUserId: 'browser-user-2' });
    const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: MODELO_ID, userId: user.userId, state: 'st-2', nonce: 'n-2' });
    const page = await browser.newPage();
    let callback: URL | null = null;
    await page.route(`${REDIRECT_URI}**`, async (route) => {
      callback = new URL(route.request().url());
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>Back in the app</h1>' });
    });
    await page.goto(url);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForSelector('text=Back in the app');
    expect((callback as unknown as URL).searchParams.get('error')).toBe('access_denied');
    expect((await mh.getUserConnections({ userId: user.userId })).data).toEqual([]);
  });
  it('walks a hybrid code id_token journey: the bank answers in the URL fragment, the relay page posts it, the app gets a working code', async () => {
    const bank = ts.server.catalog.all().find((p) => p.name === HYBRID_BANK);
    if (bank === undefined) throw new Error('the configured bank is missing');
    const user = await mh.registerUser({ clientUserId: 'browser-hybrid' });
    const url = await mh.getAuthorizeUrlForCreatedUser({ bankId: bank.id, userId: user.userId, state: 'st-h', nonce: 'n-h' });
    const page = await browser.newPage();
    let callback: URL | null = null;
    const relayed: string[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/connect/callback') relayed.push(`${r.method()} ${r.url()}`);
    });
    await page.route(`${REDIRECT_URI}**`, async (route) => {
      callback = new URL(route.request().url());
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>Back in the app</h1>' });
    });

    await page.goto(url);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(/\/sandbox\/ob\/nationwide\/login\//);
    await page.fill('input[name="username"]', 'user_ok');
    await page.fill('input[name="password"]', 'secret');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForSelector('text=Back in the app');

    // The bank's answer reached Mooring's fixed callback without a query (it was in the fragment), then the relay page posted it.
    expect(relayed[0]).toMatch(/^GET .*\/connect\/callback$/);
    expect(relayed.some((r) => r.startsWith('POST '))).toBe(true);
    const params = (callback as unknown as URL).searchParams;
    expect(params.get('state')).toBe('st-h');
    const tokens = await mh.exchangeCodeForTokens({
      paramsFromCallback: { code: params.get('code'), state: params.get('state') },
      localParams: { state: 'st-h', nonce: 'n-h', sub: user.userId },
    });
    const { data } = await mh.getUserConnections({ userId: user.userId });
    expect(data.map((c) => c.id)).toEqual([tokens.claims()['mh:con_id']]);
    expect(data[0]?.status).toBe('ok');
  });
});
