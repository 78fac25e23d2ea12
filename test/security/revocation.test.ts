/**
 * A revocation reaches every process within a second: two API servers over one database; a token
 * issued (and so remembered) by one is revoked at the other (RFC 7009) and is refused by both
 * soon after, not when it expires an hour later.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { accessToken, ALL_API_SCOPES, apiClient, call, type ApiClient } from '../helpers/api.ts';

/** Polling for the revocation to arrive: well beyond the one-second bound, far short of a token's hour. */
const POLL_EVERY_MS = 100;
const POLLS = 50;

async function revoke(baseUrl: string, client: ApiClient, token: string): Promise<number> {
  const basic = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64');
  const res = await fetch(`${baseUrl}/oidc/token/revocation`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('revocation across processes', () => {
  let testDb: TestDb;
  let a: TestServer;
  let b: TestServer;
  let client: ApiClient;

  beforeAll(async () => {
    testDb = await createTestDb();
    a = await startTestServer({}, { testDb });
    b = await startTestServer({}, { testDb });
    client = await apiClient(a.baseUrl, { scope: ALL_API_SCOPES });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await testDb?.drop();
  });

  it('a token revoked at one server is refused by the server that issued and cached it', async () => {
    const token = await accessToken(a.baseUrl, client, 'user:read');
    expect((await call(a.baseUrl, 'GET', '/users', { token })).status).toBe(200);
    expect((await call(b.baseUrl, 'GET', '/users', { token })).status).toBe(200);

    expect(await revoke(b.baseUrl, client, token)).toBe(200);
    expect((await call(b.baseUrl, 'GET', '/users', { token })).status).toBe(401);

    let status = 0;
    for (let i = 0; i < POLLS && status !== 401; i += 1) {
      status = (await call(a.baseUrl, 'GET', '/users', { token })).status;
      if (status !== 401) await sleep(POLL_EVERY_MS);
    }
    expect(status).toBe(401);
  });

  it('another client cannot revoke a token that is not its own', async () => {
    const token = await accessToken(a.baseUrl, client, 'user:read');
    const other = await apiClient(b.baseUrl, { scope: ALL_API_SCOPES });
    await revoke(b.baseUrl, other, token);
    expect((await call(b.baseUrl, 'GET', '/users', { token })).status).toBe(200);
  });
});
