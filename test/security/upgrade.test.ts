/**
 * Upgrading a database that holds secrets in plain text (written by a version before sealing):
 * the first start seals them all, and everything that uses them keeps working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretBox, decodeKey } from '../../src/crypto/secrets.ts';
import { startTestServer, TEST_ENCRYPTION_KEY, type TestServer } from '../helpers/server.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { accessToken, call, connectBank, MODELO_ID, type ApiClient } from '../helpers/api.ts';
import { allEvents, attendedSync, replay, runScheduler, setWebhook, webhookClient } from '../helpers/webhooks.ts';
import { officialClientFor } from '../helpers/moneyhub.ts';
import { signatureProblem, startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';

describe('upgrading a database with secrets in plain text', () => {
  let testDb: TestDb;
  let ts: TestServer;
  let receiver: Receiver;
  let client: ApiClient;
  let userId: string;
  let connectionId: string;
  let webhookSecret: string;

  beforeAll(async () => {
    testDb = await createTestDb();
    ts = await startTestServer({}, { testDb });
    receiver = await startReceiver();
    client = await webhookClient(ts.baseUrl);
    webhookSecret = await setWebhook(ts.baseUrl, client.clientId, receiver.url);
    ({ userId } = await client.mh.registerUser({ clientUserId: 'upgrade' }));
    connectionId = await connectBank(client, userId, MODELO_ID);
    await runScheduler(ts.baseUrl);
    await ts.stop();

    // Put every secret back the way the previous version stored it.
    const box = createSecretBox(decodeKey(TEST_ENCRYPTION_KEY) as Buffer);
    const db = testDb.db;
    const grant = (await db.query<{ g: string }>('select provider_grant #>> $2 as g from connections where id = $1', [connectionId, '{}'])).rows[0]?.g ?? '';
    await db.query('update connections set provider_grant = $2::jsonb where id = $1', [connectionId, box.open(grant, `connections.provider_grant:${connectionId}`)]);
    await db.query('update webhook_endpoints set secret = $2 where client_id = $1', [client.clientId, webhookSecret]);
    await db.query(
      `update oidc_models set payload = jsonb_set(payload, '{client_secret}', to_jsonb($2::text)) where kind = 'Client' and id = $1`,
      [client.clientId, client.clientSecret],
    );
    for (const key of ['server_keys', 'sandbox_client_secret']) {
      const v = (await db.query<{ v: string }>("select value #>> '{}' as v from settings where key = $1", [key])).rows[0]?.v ?? '';
      await db.query('update settings set value = $2::jsonb where key = $1', [key, box.open(v, `settings:${key}`)]);
    }
    const plain = await db.query<{ n: number }>("select count(*)::int as n from connections where jsonb_typeof(provider_grant) = 'object'");
    expect(plain.rows[0]?.n).toBe(1);

    ts = await startTestServer({}, { testDb });
    client = { ...client, mh: await officialClientFor(ts.baseUrl, client) };
  }, 120_000);
  afterAll(async () => {
    await receiver?.close();
    await ts?.stop();
    await testDb?.drop();
  });

  it('seals every secret at start-up', async () => {
    const values = await testDb.db.query<{ what: string; value: string }>(
      `select 'grant' as what, provider_grant #>> '{}' as value from connections
       union all select 'webhook', secret from webhook_endpoints
       union all select 'client', payload->>'client_secret' from oidc_models where kind = 'Client'
       union all select 'setting ' || key, value #>> '{}' from settings where key in ('server_keys', 'sandbox_client_secret')`,
    );
    expect(values.rows).toHaveLength(5);
    for (const r of values.rows) expect(r.value.startsWith('v1.'), r.what).toBe(true);
  });

  it('keeps working: client authentication, the bank grant, the webhook secret', async () => {
    const token = await accessToken(ts.baseUrl, client, 'user:read');
    expect((await call(ts.baseUrl, 'GET', '/users', { token })).status).toBe(200);
    expect(await attendedSync(client, userId, connectionId)).toBe('ok');
    const first = (await allEvents(ts.baseUrl, client))[0];
    if (first === undefined) throw new Error('no webhook events were logged');
    const before = receiver.received.length;
    expect((await replay(ts.baseUrl, client, first.id)).status).toBe(202);
    await runScheduler(ts.baseUrl);
    const delivered = receiver.received.slice(before);
    expect(delivered.length).toBeGreaterThan(0);
    for (const r of delivered) expect(signatureProblem(webhookSecret, r.raw, r.signature, Math.floor(r.at / 1000))).toBeNull();
  });
});
