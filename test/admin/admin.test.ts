import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.ts';
import { Browser } from '../helpers/browser.ts';
import { connect, officialClient } from '../helpers/moneyhub.ts';

const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';

describe('the operator page and API', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
    const { mh } = await officialClient(ts.baseUrl, 'client_secret_basic');
    const { userId } = await mh.registerUser({ clientUserId: 'admin-view' });
    await connect(mh, userId, MODELO_ID, 'user_ok');
  });
  afterAll(async () => ts.stop());

  it('asks for the admin token, refuses a wrong one, and then shows providers, connections and clients', async () => {
    const browser = new Browser();
    const signIn = await browser.follow(`${ts.baseUrl}/admin`);
    expect(signIn.html).toContain('Admin token');
    const wrong = await browser.submit(signIn, { token: 'not-the-token-at-all' });
    expect(wrong.status).toBe(401);
    const page = await browser.submit(signIn, { token: ADMIN_TOKEN });
    expect(page.status).toBe(200);
    expect(page.html).toContain('Mooring operations');
    expect(page.html).toContain('Modelo Open Banking Mock');
    expect(page.html).toContain('Test app (client_secret_basic)');
    expect(page.html).toMatch(/1 in all; by last sync: success: 1/);
  });

  it('serves the same overview as JSON with the admin token as a bearer, and 401 without it', async () => {
    const denied = await fetch(`${ts.baseUrl}/admin/api/overview`);
    expect(denied.status).toBe(401);
    const res = await fetch(`${ts.baseUrl}/admin/api/overview`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const body = (await res.json()) as { providers: { name: string; connections: number; sync: string }[]; connections: { total: number } };
    expect(res.status).toBe(200);
    expect(body.connections.total).toBe(1);
    expect(body.providers.find((p) => p.name === 'Modelo Open Banking Mock')).toMatchObject({ connections: 1, sync: 'AVAILABLE' });
  });
});
