/** A real server and an official client for the enclosing describe block. */
import { afterAll, beforeAll } from 'vitest';
import { startTestServer, type TestServer } from './server.ts';
import { officialClient, type AuthMethod, type MoneyhubClient } from './moneyhub.ts';

export interface ServerWithClient {
  ts: TestServer;
  mh: MoneyhubClient;
}

/** Registers beforeAll/afterAll hooks; read the fields inside tests (they are set once the hooks ran). */
export function serverWithClient(method: AuthMethod = 'client_secret_basic'): ServerWithClient {
  const env = {} as ServerWithClient;
  beforeAll(async () => {
    env.ts = await startTestServer();
    env.mh = (await officialClient(env.ts.baseUrl, method)).mh;
  });
  afterAll(async () => {
    await env.ts?.stop();
  });
  return env;
}
