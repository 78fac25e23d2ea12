/**
 * Persistence across restarts on the embedded database (SPEC section 1): a server started twice on
 * the same data directory keeps its API clients, users, issued tokens and OpenID signing keys.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createServer, type Server } from '../../src/server.ts';
import { ADMIN_TOKEN, freePort, registerClient } from '../helpers/server.ts';
import { REDIRECT_URI } from '../helpers/moneyhub.ts';
import { accessToken, call } from '../helpers/api.ts';
import { provideTestPki } from '../helpers/pki.ts';

interface Jwks {
  keys: { kid?: string; kty: string; n?: string; x?: string; d?: string }[];
}

/** Starts the whole server the way `npm start` does without DATABASE_URL: PGlite in `dataDir`. */
async function startOnDataDir(dataDir: string, port: number): Promise<{ server: Server; baseUrl: string }> {
  const baseUrl = `http://127.0.0.1:${port}`;
  provideTestPki(dataDir);
  const config = loadConfig({}, { port, host: '127.0.0.1', publicUrl: baseUrl, adminToken: ADMIN_TOKEN, dataDir, databaseUrl: null, sandboxMtlsPort: await freePort() });
  const server = await createServer({ config, logger: createLogger('silent'), adminToken: ADMIN_TOKEN });
  if (server.app === null) throw new Error('the server has no HTTP app');
  await server.app.listen({ port, host: '127.0.0.1' });
  return { server, baseUrl };
}

describe('persistence across restarts on the embedded database', () => {
  let dataDir: string;
  let port: number;
  let baseUrl: string;
  let second: Server | null = null;
  let client: { clientId: string; clientSecret: string };
  let user: Record<string, unknown>;
  let jwksBefore: Jwks;
  let tokenBefore: string;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mooring-persist-'));
    port = await freePort();

    const first = await startOnDataDir(dataDir, port);
    baseUrl = first.baseUrl;
    try {
      const reg = await registerClient(baseUrl, {
        client_name: 'Persistence test app',
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
      });
      client = { clientId: reg.client_id, clientSecret: reg.client_secret ?? '' };
      tokenBefore = await accessToken(baseUrl, client, 'user:create user:read');
      const created = await call(baseUrl, 'POST', '/users', { token: tokenBefore, json: { clientUserId: 'survivor' } });
      expect(created.status).toBe(201);
      user = created.body as Record<string, unknown>;
      const jwks = await call(baseUrl, 'GET', '/oidc/jwks');
      expect(jwks.status).toBe(200);
      jwksBefore = jwks.body as Jwks;
    } finally {
      await first.server.close();
    }
    // The first server is really gone: nothing answers on its port.
    await expect(fetch(`${baseUrl}/health`)).rejects.toThrow();
    expect(fs.readdirSync(dataDir).length).toBeGreaterThan(0);

    second = (await startOnDataDir(dataDir, port)).server;
  }, 120_000);

  afterAll(async () => {
    await second?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("accepts the client's credentials after a restart", async () => {
    const res = await call(baseUrl, 'POST', '/oidc/token', {
      raw: new URLSearchParams({ grant_type: 'client_credentials', scope: 'user:read' }).toString(),
      contentType: 'application/x-www-form-urlencoded',
      headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}` },
    });
    expect(res.status).toBe(200);
    expect((res.body as { access_token?: unknown }).access_token).toEqual(expect.any(String));
  });

  it('still refuses a wrong secret for that client after a restart (the credentials are checked, not waved through)', async () => {
    const res = await call(baseUrl, 'POST', '/oidc/token', {
      raw: new URLSearchParams({ grant_type: 'client_credentials', scope: 'user:read' }).toString(),
      contentType: 'application/x-www-form-urlencoded',
      headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:not-the-secret`).toString('base64')}` },
    });
    expect(res.status).toBe(401);
  });

  it('still holds the user, unchanged, after a restart', async () => {
    const token = await accessToken(baseUrl, client, 'user:read');
    const res = await call(baseUrl, 'GET', `/users/${String(user.userId)}`, { token });
    expect(res.status).toBe(200);
    const { lastAccessed: _a, ...after } = res.body as Record<string, unknown>;
    const { lastAccessed: _b, ...before } = user;
    expect(after).toEqual(before);
    const list = (await call(baseUrl, 'GET', '/users', { token })).body as { data: { userId: string }[] };
    expect(list.data.map((u) => u.userId)).toEqual([user.userId]);
  });

  it('serves the same OpenID signing keys (JWKS) after a restart', async () => {
    const res = await call(baseUrl, 'GET', '/oidc/jwks');
    expect(res.status).toBe(200);
    const after = res.body as Jwks;
    expect(jwksBefore.keys.length).toBeGreaterThan(0);
    expect(after).toEqual(jwksBefore);
    // Only public halves are published.
    expect(after.keys.every((k) => k.d === undefined)).toBe(true);
  });

  it('accepts an access token issued before the restart', async () => {
    const res = await call(baseUrl, 'GET', '/users', { token: tokenBefore });
    expect(res.status).toBe(200);
  });
});
