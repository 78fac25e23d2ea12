/**
 * Answers with personal data or secrets carry `Cache-Control: no-store` (a user of the API, a page of
 * the operator console); the API reference stays cacheable, and token answers carry the header once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.ts';
import { accessToken, apiClient, call, requestToken, type ApiClient } from '../helpers/api.ts';
import { Browser } from '../helpers/browser.ts';

describe('Cache-Control: no-store', () => {
  let ts: TestServer;
  let client: ApiClient;
  beforeAll(async () => {
    ts = await startTestServer();
    client = await apiClient(ts.baseUrl);
  });
  afterAll(async () => ts?.stop());

  it('is on a user\'s API answers (found or not) and on the console\'s pages, not on the API reference', async () => {
    const { userId } = await client.mh.registerUser({ clientUserId: 'cache-check' });
    const token = await accessToken(ts.baseUrl, client, 'user:read');
    const user = await call(ts.baseUrl, 'GET', `/users/${userId}`, { token });
    expect(user.status).toBe(200);
    expect((user.body as { clientUserId: string }).clientUserId).toBe('cache-check');
    expect(user.headers.get('cache-control')).toBe('no-store');
    expect((await call(ts.baseUrl, 'GET', '/users/00000000-0000-4000-8000-000000000000', { token })).headers.get('cache-control')).toBe('no-store');

    const browser = new Browser();
    const page = await browser.submit(await browser.follow(`${ts.baseUrl}/admin`), { token: ADMIN_TOKEN });
    expect(page.html).toContain('Mooring operations');
    const cookie = (browser as unknown as { cookieHeader(): string }).cookieHeader();
    const consolePage = await fetch(`${ts.baseUrl}/admin`, { headers: { cookie } });
    expect(await consolePage.text()).toContain('Mooring operations');
    expect(consolePage.headers.get('cache-control')).toBe('no-store');

    const docs = await fetch(`${ts.baseUrl}/docs/json`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('cache-control')).not.toBe('no-store');

    const tokenAnswer = await requestToken(ts.baseUrl, client, { grant_type: 'client_credentials', scope: 'user:read' });
    expect(tokenAnswer.status).toBe(200);
    expect(tokenAnswer.headers.get('cache-control')).toBe('no-store');
  });
});
