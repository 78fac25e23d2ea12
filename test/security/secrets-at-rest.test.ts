/**
 * Secrets at rest: after real journeys through the official client (an Open Banking sandbox bank,
 * the legacy Aviva bank, a webhook, client-credentials and authorization-code tokens with a
 * refresh token), no known secret appears anywhere in the database; and `keys rotate` moves every
 * sealed value to a new key, after which a server holding only the new key still works end to end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.ts';
import { loadConfig } from '../../src/config.ts';
import { runCli } from '../../src/cli/index.ts';
import { rotateKeys } from '../../src/cli/keys.ts';
import { createSecretBox, decodeKey, keyId, newEncryptionKey } from '../../src/crypto/secrets.ts';
import { ADMIN_TOKEN, startTestServer, TEST_ENCRYPTION_KEY, type TestServer } from '../helpers/server.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { accessToken, MODELO_ID, requestToken, type ApiClient, type Res } from '../helpers/api.ts';
import { officialClientFor, runJourney, type MoneyhubClient } from '../helpers/moneyhub.ts';
import { allEvents, replay, runScheduler, setWebhook, webhookClient } from '../helpers/webhooks.ts';
import { signatureProblem, startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';

interface Journey {
  connectionId: string;
  accessToken: string;
  refreshToken: string | undefined;
}

/** A connect journey whose tokens are kept (the helper in moneyhub.ts drops them). */
async function connectKeepingTokens(mh: MoneyhubClient, userId: string, bankId: string): Promise<Journey> {
  const state = `s-${Math.random().toString(36).slice(2)}`;
  const nonce = `n-${Math.random().toString(36).slice(2)}`;
  // offline_access (a refresh token) needs prompt=consent.
  const url = await mh.getAuthorizeUrl({ state, nonce, scope: `openid offline_access id:${bankId}`, claims: { id_token: { sub: { essential: true, value: userId } } } });
  const withConsent = new URL(url);
  withConsent.searchParams.set('prompt', 'consent');
  const callback = await runJourney(withConsent.toString(), 'user_ok');
  if (callback.get('error') !== null) throw new Error(`journey failed: ${callback.get('error')} ${callback.get('error_description') ?? ''}`);
  const tokens = await mh.exchangeCodeForTokens({ paramsFromCallback: { code: callback.get('code'), state: callback.get('state') }, localParams: { state, nonce, sub: userId } });
  return { connectionId: tokens.claims()['mh:con_id'] as string, accessToken: tokens.access_token ?? '', refreshToken: tokens.refresh_token };
}

/** Every row of every table in the database, as JSON text (bytea shows as hex). */
async function dumpDatabase(db: Db): Promise<{ table: string; row: string }[]> {
  const tables = await db.query<{ schema: string; name: string }>(
    `select table_schema as schema, table_name as name from information_schema.tables
      where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`,
  );
  expect(tables.rows.map((t) => t.name)).toEqual(expect.arrayContaining(['oidc_models', 'connections', 'webhook_endpoints', 'settings', 'sandbox_tokens']));
  const out: { table: string; row: string }[] = [];
  for (const t of tables.rows) {
    const quoted = `"${t.schema.replace(/"/g, '""')}"."${t.name.replace(/"/g, '""')}"`;
    const rows = await db.query<{ row: string }>(`select row_to_json(t)::text as row from ${quoted} t`);
    for (const r of rows.rows) out.push({ table: `${t.schema}.${t.name}`, row: r.row });
  }
  return out;
}

/** The tables where a secret (as text, or as the hex a bytea column would show) appears. */
function whereFound(dump: { table: string; row: string }[], secret: string): string[] {
  const hex = Buffer.from(secret).toString('hex');
  return [...new Set(dump.filter((d) => d.row.includes(secret) || d.row.includes(hex)).map((d) => d.table))];
}

/** The bank-side secrets inside a provider grant (tokens, credentials), found by field name. */
function grantSecrets(grant: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown, key: string): void => {
    if (typeof v === 'string' && /token|secret|credential|password/i.test(key) && !/expires|id$/i.test(key)) out.push(v);
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(grant, '');
  return out;
}

describe('secrets at rest', () => {
  let testDb: TestDb;
  let ts: TestServer;
  let receiver: Receiver;
  let client: ApiClient;
  let userId: string;
  let webhookSecret: string;
  let ob: Journey;
  let legacy: Journey;
  let refreshed: Res;
  const secrets = new Map<string, string>();

  beforeAll(async () => {
    testDb = await createTestDb();
    ts = await startTestServer({}, { testDb });
    receiver = await startReceiver();
    client = await webhookClient(ts.baseUrl);
    webhookSecret = await setWebhook(ts.baseUrl, client.clientId, receiver.url);
    ({ userId } = await client.mh.registerUser({ clientUserId: 'secrets-at-rest' }));
    ob = await connectKeepingTokens(client.mh, userId, MODELO_ID);
    const aviva = ((await client.mh.listConnections()) as { id: string; name: string }[]).find((c) => c.name === 'Aviva');
    if (aviva === undefined) throw new Error('no Aviva in the catalog');
    legacy = await connectKeepingTokens(client.mh, userId, aviva.id);
    await runScheduler(ts.baseUrl);

    secrets.set('client secret', client.clientSecret);
    secrets.set('admin token', ADMIN_TOKEN);
    secrets.set('webhook secret', webhookSecret);
    secrets.set('client-credentials token', await accessToken(ts.baseUrl, client, 'user:read'));
    secrets.set('user-bound client-credentials token', await accessToken(ts.baseUrl, client, 'accounts:read', userId));
    secrets.set('access token (Open Banking journey)', ob.accessToken);
    secrets.set('access token (legacy journey)', legacy.accessToken);
    if (ob.refreshToken !== undefined) secrets.set('refresh token', ob.refreshToken);
    refreshed = await requestToken(ts.baseUrl, client, { grant_type: 'refresh_token', refresh_token: ob.refreshToken ?? '' });
    const body = refreshed.body as { access_token?: string; refresh_token?: string } | undefined;
    if (body?.access_token !== undefined) secrets.set('access token (refreshed)', body.access_token);
    if (body?.refresh_token !== undefined) secrets.set('refresh token (rotated)', body.refresh_token);
  }, 120_000);
  afterAll(async () => {
    await receiver?.close();
    await ts?.stop();
    await testDb?.drop();
  });

  it('the journeys issued what the check needs: access tokens and a refresh token that works', () => {
    expect(ob.accessToken).not.toBe('');
    expect(legacy.accessToken).not.toBe('');
    expect(ob.refreshToken).toBeDefined();
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(secrets.has('access token (refreshed)')).toBe(true);
  });

  it('no table holds a secret: bank tokens and credentials, client secret, tokens, webhook secret, admin token', async () => {
    const box = createSecretBox(decodeKey(TEST_ENCRYPTION_KEY) as Buffer);
    const grants = await testDb.db.query<{ id: string; provider_grant: unknown }>('select id, provider_grant from connections order by id');
    expect(grants.rows.map((r) => r.id).sort()).toEqual([ob.connectionId, legacy.connectionId].sort());
    for (const r of grants.rows) {
      expect(typeof r.provider_grant).toBe('string');
      const bankSecrets = grantSecrets(JSON.parse(box.open(r.provider_grant as string, `connections.provider_grant:${r.id}`)));
      expect(bankSecrets.length).toBeGreaterThan(0);
      bankSecrets.forEach((s, i) => secrets.set(`bank secret ${i + 1} of connection ${r.id}`, s));
    }
    // Mooring's own keys and its credential at the sandbox banks.
    const settings = await testDb.db.query<{ key: string; value: unknown }>("select key, value from settings where key in ('server_keys', 'sandbox_client_secret')");
    expect(settings.rows).toHaveLength(2);
    for (const r of settings.rows) {
      expect(typeof r.value).toBe('string');
      const value = JSON.parse(box.open(r.value as string, `settings:${r.key}`)) as unknown;
      if (typeof value === 'string') secrets.set(`setting ${r.key}`, value);
      else {
        const keys = value as { jwks: { keys: { d?: string }[] }; cookieKeys: string[] };
        keys.jwks.keys.forEach((k, i) => secrets.set(`private signing key ${i + 1}`, k.d ?? ''));
        keys.cookieKeys.forEach((k, i) => secrets.set(`cookie key ${i + 1}`, k));
      }
    }
    expect(secrets.size).toBeGreaterThanOrEqual(17);

    const dump = await dumpDatabase(testDb.db);
    const found = [...secrets].map(([name, value]) => ({ name, tables: whereFound(dump, value) })).filter((f) => f.tables.length > 0);
    expect(found).toEqual([]);
  });

  it('keys rotate re-seals every secret under the new key; a server with only that key still works', async () => {
    const newKey = newEncryptionKey();
    const newKid = keyId(decodeKey(newKey) as Buffer);
    const config = loadConfig({}, { ...ts.config, databaseUrl: testDb.url, encryptionKey: newKey, previousEncryptionKeys: [TEST_ENCRYPTION_KEY] });
    const lines: string[] = [];
    // The command itself on PostgreSQL; on the in-memory PGlite only this process can open the database.
    const code = testDb.url !== null
      ? await runCli('keys', ['rotate'], config)
      : await rotateKeys(testDb.db, createSecretBox(decodeKey(newKey) as Buffer, [decodeKey(TEST_ENCRYPTION_KEY) as Buffer]), { log: (l) => lines.push(l), error: (l) => lines.push(l) });
    expect(code, lines.join('\n')).toBe(0);

    const sealed = await testDb.db.query<{ what: string; value: string }>(
      `select 'grant' as what, provider_grant #>> '{}' as value from connections
       union all select 'webhook', secret from webhook_endpoints
       union all select 'setting ' || key, value #>> '{}' from settings where key in ('server_keys', 'sandbox_client_secret')
       union all select 'client', payload->>'client_secret' from oidc_models where kind = 'Client' and payload->>'client_secret' is not null
       union all select 'session ' || kind, payload->>'jti' from oidc_models where (kind = 'Session' or kind like '%:Session') and payload->>'uid' is not null`,
    );
    // Mooring's own sign-in sessions and the sandbox Open Banking bank's (stored as sandbox-ob/<slug>:Session).
    expect(sealed.rows.filter((r) => r.what === 'session Session').length).toBeGreaterThanOrEqual(1);
    expect(sealed.rows.filter((r) => /^session sandbox-ob\/.+:Session$/.test(r.what)).length).toBeGreaterThanOrEqual(1);
    expect(sealed.rows.filter((r) => r.what === 'grant')).toHaveLength(2);
    expect(sealed.rows.filter((r) => r.what === 'client').length).toBeGreaterThanOrEqual(1);
    expect(sealed.rows.filter((r) => r.what.startsWith('setting '))).toHaveLength(2);
    for (const r of sealed.rows) expect(r.value.startsWith(`v1.${newKid}.`), `${r.what}: ${r.value}`).toBe(true);

    // The old server goes away; the new one knows only the new key.
    await ts.stop();
    ts = await startTestServer({ encryptionKey: newKey, previousEncryptionKeys: [] }, { testDb });
    const mh = await officialClientFor(ts.baseUrl, client);
    // Client authentication (the sealed client secret), user-bound calls and both banks' grants.
    for (const connectionId of [ob.connectionId, legacy.connectionId]) {
      const sync = await mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.7' });
      expect(sync.data.status, connectionId).toBe('ok');
    }
    const refreshed = await requestToken(ts.baseUrl, client, { grant_type: 'refresh_token', refresh_token: secrets.get('refresh token (rotated)') ?? secrets.get('refresh token') ?? '' });
    expect(refreshed.status, refreshed.text).toBe(200);
    // The webhook secret: a replayed event arrives signed with the secret the client holds.
    const events = await allEvents(ts.baseUrl, client);
    const first = events[0];
    if (first === undefined) throw new Error('no webhook events were logged');
    const before = receiver.received.length;
    expect((await replay(ts.baseUrl, client, first.id)).status).toBe(202);
    await runScheduler(ts.baseUrl);
    const delivered = receiver.received.slice(before);
    expect(delivered.length).toBeGreaterThan(0);
    for (const r of delivered) expect(signatureProblem(webhookSecret, r.raw, r.signature, Math.floor(r.at / 1000))).toBeNull();
  });
});
