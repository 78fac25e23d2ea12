/**
 * The operator console in a real browser (Debian's Chromium), keyboard first: sign in, search a
 * customer's clientUserId, open the connection, find the failed sync and the provider call behind
 * it, switch the sandbox behaviour, sync now, replay a webhook, sign out. Every form field has a
 * label; forms refuse posts without the session's CSRF token or from another site. Screenshots of
 * each page go to test-artifacts/console/. Skipped where Chromium is not installed.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ALL_API_SCOPES, apiClient, connectBank, MODELO_ID, type ApiClient } from '../helpers/api.ts';
import { ADMIN_TOKEN, freePort, startTestServer, type TestServer } from '../helpers/server.ts';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';
import { adminCall, setWebhook } from '../helpers/webhooks.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts/console');
const CUSTOMER = 'harbour-customer-0042';

interface Entry { kind: string; id: string; detail: Record<string, unknown> }

describe.skipIf(!fs.existsSync(CHROMIUM))('the operator console in a real browser', () => {
  let ts: TestServer;
  let receiver: Receiver;
  let client: ApiClient;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let userId: string;
  let connectionId: string;
  let evil: http.Server;
  let evilUrl: string;

  const shot = async (name: string): Promise<void> => {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  };
  const timeline = async (kind: string): Promise<Entry[]> => {
    const res = await adminCall(ts.baseUrl, 'GET', `/admin/api/connections/${encodeURIComponent(connectionId)}?kind=${kind}&limit=200`);
    return (res.body as { data: { timeline: Entry[] } }).data.timeline;
  };
  /** Presses Tab until `selector` has the focus; answers how many presses it took (fails past `max`). */
  const tabTo = async (selector: string, max = 60): Promise<number> => {
    for (let i = 1; i <= max; i += 1) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(`document.activeElement?.matches(${JSON.stringify(selector)}) ?? false`)) === true) return i;
    }
    throw new Error(`Tab never reached ${selector}`);
  };
  /** Every visible form field on the page has a label (its own <label>, as the accessibility tree names it). */
  const expectLabelledFields = async (): Promise<void> => {
    // (Evaluated in the page, as a string: this project's TypeScript has no DOM types.)
    const unlabelled = await page.evaluate(`[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
      .filter((el) => el.labels === null || el.labels.length === 0 || [...el.labels].every((l) => (l.textContent ?? '').trim() === ''))
      .map((el) => el.outerHTML)`);
    expect(unlabelled).toEqual([]);
  };

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    ts = await startTestServer();
    receiver = await startReceiver();
    client = await apiClient(ts.baseUrl, { scope: ALL_API_SCOPES, client_name: 'Harbour Savings' });
    await setWebhook(ts.baseUrl, client.clientId, receiver.url);
    userId = (await client.mh.registerUser({ clientUserId: CUSTOMER })).userId;
    connectionId = await connectBank(client, userId, MODELO_ID, 'user_revoked');
    // The bank refuses the second sync (the customer revoked access there): the connection is broken since then.
    const synced = await client.mh.syncUserConnection({ userId, connectionId });
    expect(synced.data.status).toBe('error');

    // A page of another site that posts to the console (a cross-site request forgery attempt).
    const port = await freePort();
    evilUrl = `http://localhost:${port}/`;
    evil = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end(
        `<!doctype html><form method="post" action="${ts.baseUrl}/admin/connections/${encodeURIComponent(connectionId)}/sync"><input type="hidden" name="csrf" value="guess"><button>Win a prize</button></form>`,
      );
    });
    await new Promise<void>((r) => evil.listen(port, '127.0.0.1', r));

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((r) => (evil === undefined ? r() : evil.close(() => r())));
    await receiver?.close();
    await ts?.stop();
  });

  it('signs in with the admin token from the keyboard and shows the broken connection among those needing attention', async () => {
    await page.goto(`${ts.baseUrl}/admin`);
    expect(await page.locator('h1').innerText()).toBe('Operator sign-in');
    await expectLabelledFields();
    await shot('01-sign-in');
    await tabTo('input[name="token"]');
    await page.keyboard.type(ADMIN_TOKEN);
    await page.keyboard.press('Enter');
    await page.waitForSelector('h1:text("Mooring operations")');
    await expectLabelledFields();
    const attention = page.locator('h2:text("Connections needing attention") + p + table');
    expect(await attention.innerText()).toMatch(/error \(credentials_error\)\s+Modelo Open Banking Mock\s+1 connection/);
    await shot('02-overview');
  });

  it('reaches the search field first by Tab, with a visible focus, and finds the customer by clientUserId', async () => {
    const presses = await tabTo('#console-q');
    expect(presses).toBeLessThanOrEqual(2);
    const outline = (await page.evaluate('(() => { const s = getComputedStyle(document.activeElement); return { style: s.outlineStyle, width: s.outlineWidth }; })()')) as { style: string; width: string };
    expect(outline.style).not.toBe('none');
    expect(outline.width).not.toBe('0px');
    expect(await page.getByLabel('Search users, connections, clients').count()).toBe(1);
    await page.keyboard.type(CUSTOMER);
    await page.keyboard.press('Enter');
    await page.waitForSelector(`h1:text("Search: ${CUSTOMER}")`);
    await expectLabelledFields();
    await shot('03-search');
    expect(await page.locator('main').innerText()).toContain(userId);
    // The connection's link, then Enter.
    await tabTo(`a[href="/admin/connections/${encodeURIComponent(connectionId)}"]`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('h1:text("Modelo Open Banking Mock connection")');
  });

  it('shows the state, the remediation in words, the failed sync and the provider call that caused it', async () => {
    await expectLabelledFields();
    await shot('04-connection');
    const facts = await page.locator('dl.facts').innerText();
    expect(facts).toContain('error (credentials_error)');
    expect(facts).toContain('The user must re-authenticate at the provider');
    const failed = (await timeline('sync')).find((s) => s.detail.fetchStatus === 'credentials-error');
    if (failed === undefined) throw new Error('no failed sync');
    const rows = page.locator('main table tbody tr');
    const failedRow = rows.filter({ has: page.locator('td:nth-child(2)', { hasText: /^Sync$/ }) }).filter({ hasText: failed.id });
    expect(await failedRow.innerText()).toContain('credentials-error');
    const callRows = rows.filter({ has: page.locator('td:nth-child(2)', { hasText: /^Provider call$/ }) }).filter({ hasText: `sync ${failed.id}` });
    expect(await callRows.count()).toBeGreaterThan(0);
    expect(await callRows.first().innerText()).toMatch(/Provider call\s+(GET|POST) \/\S+ → \d{3}/);

    // Filter the timeline to provider calls from the keyboard.
    await page.selectOption('#kind', 'provider_call');
    await page.focus('#kind');
    await tabTo('main form[method="get"] button');
    await page.keyboard.press('Enter');
    await page.waitForURL(/kind=provider_call/);
    const kinds = await page.locator('main table tbody tr td:nth-child(2)').allInnerTexts();
    expect(new Set(kinds)).toEqual(new Set(['Provider call']));
    await shot('05-connection-provider-calls');
    await page.goto(`${ts.baseUrl}/admin/connections/${encodeURIComponent(connectionId)}`);
  });

  it('switches the sandbox behaviour and syncs now with the keyboard; the connection is ok again', async () => {
    await page.selectOption('#behaviour', 'user_ok');
    await page.focus('#behaviour');
    await tabTo('form[action$="/behaviour"] button');
    await page.keyboard.press('Enter');
    await page.waitForSelector('p.notice:text("The sandbox behaviour of this connection was switched.")');
    const syncsBefore = (await timeline('sync')).length;
    await page.focus('#console-q');
    await tabTo('form[action$="/sync"] button');
    await page.keyboard.press('Enter');
    await page.waitForSelector('p.notice:text("The sync succeeded.")');
    expect(await page.locator('dl.facts').innerText()).toMatch(/State\s+ok/);
    expect((await timeline('sync')).length).toBe(syncsBefore + 1);
    await shot('06-synced');
  });

  it('replays a webhook event: one more delivery attempt appears under it', async () => {
    const event = (await timeline('webhook_event')).find((e) => e.detail.eventType === 'connectionStatusChanged');
    if (event === undefined) throw new Error('no status change event');
    const attempts = (event.detail.deliveries as unknown[]).length;
    await page.locator(`form[action="/admin/webhook-events/${event.id}/replay"] button`).click();
    await page.waitForSelector('p.notice:text("queued for delivery again")');
    await page.getByRole('button', { name: 'Run due syncs' }).click();
    await page.waitForSelector('p.notice:text("Due syncs, time-driven events and webhook deliveries have run.")');
    const row = page.locator('main table tbody tr').filter({ hasText: event.id });
    expect(await row.locator('ol li').count()).toBe(attempts + 1);
    expect(receiver.received.filter((r) => r.eventId === event.id).length).toBe(attempts + 1);
    await shot('07-replayed');
  });

  it('shows the provider page with its health chart and the client page with webhook delivery health', async () => {
    await page.getByRole('link', { name: 'Modelo Open Banking Mock' }).first().click();
    await page.waitForSelector('h1:text("Modelo Open Banking Mock")');
    expect(await page.locator('svg[role="img"] rect').count()).toBeGreaterThan(0);
    expect(await page.locator('main').innerText()).toContain('credentials-error');
    await shot('08-provider');
    await page.goBack();
    await page.getByRole('link', { name: 'Harbour Savings' }).click();
    await page.waitForSelector('h1:text("Harbour Savings")');
    expect(await page.locator('main').innerText()).toMatch(/Success rate\s+100% of \d+ attempts delivered/);
    await shot('09-client');
  });

  it('refuses a POST without the CSRF token and one from another site, and changes nothing', async () => {
    const before = (await timeline('sync')).length;
    const withoutToken = await context.request.post(`${ts.baseUrl}/admin/connections/${encodeURIComponent(connectionId)}/sync`, { form: {}, maxRedirects: 0 });
    expect(withoutToken.status()).toBe(403);
    const wrongToken = await context.request.post(`${ts.baseUrl}/admin/connections/${encodeURIComponent(connectionId)}/sync`, { form: { csrf: 'guess' }, maxRedirects: 0 });
    expect(wrongToken.status()).toBe(403);

    const attacker = await context.newPage();
    await attacker.goto(evilUrl);
    const [answer] = await Promise.all([attacker.waitForNavigation(), attacker.getByRole('button', { name: 'Win a prize' }).click()]);
    expect(answer?.status()).toBe(403);
    expect(await attacker.locator('body').innerText()).toContain('Mooring did not act on it');
    await attacker.close();
    expect((await timeline('sync')).length).toBe(before);
  });

  it('signs out server-side: the console then sends the browser to the sign-in page', async () => {
    await page.goto(`${ts.baseUrl}/admin`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForSelector('h1:text("Operator sign-in")');
    await shot('10-signed-out');
    await page.goto(`${ts.baseUrl}/admin/connections/${encodeURIComponent(connectionId)}`);
    expect(new URL(page.url()).pathname).toBe('/admin');
    expect(await page.locator('h1').innerText()).toBe('Operator sign-in');
    const stored = await ts.server.db.query<{ n: string }>('select count(*) as n from admin_sessions');
    expect(Number(stored.rows[0]?.n)).toBe(0);
  });
});
