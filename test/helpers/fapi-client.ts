/**
 * A hand-driven FAPI client of a sandbox Open Banking bank, for tests that speak to the bank at the
 * HTTP level: raw calls over mutual TLS with the sandbox PKI's client certificate (undici), client
 * assertions and request objects signed with jose. Mooring's own client is src/providers/openbanking.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { importPKCS8, SignJWT, type CryptoKey } from 'jose';
import type { SandboxPki } from '../../src/sandbox/pki.ts';

export const SANDBOX_CLIENT_ID = 'mooring';

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json(): Record<string, unknown>;
}

export interface SigningKey { key: CryptoKey; kid: string }

export interface FapiBankClient {
  /** `<PUBLIC_URL>/sandbox/ob/<slug>`: the bank's issuer (discovery, /auth, /jwks). */
  issuer: string;
  /** `<mtlsUrl>/sandbox/ob/<slug>`: its token endpoint is `<mtls>/token`. */
  mtls: string;
  /** `<mtls>/open-banking/v3.1/aisp`. */
  aisp: string;
  /** An undici agent carrying the sandbox client certificate (and trusting the sandbox CA). */
  agent: Agent;
  /** A raw call over mutual TLS with the client certificate. */
  call(method: string, url: string, opts?: { headers?: Record<string, string>; body?: string; agent?: Agent }): Promise<RawAnswer>;
  /** The private_key_jwt client authentication fields (for `aud`, default `<mtls>/token`; signed with `key`, default Mooring's). */
  clientAssertion(opts?: { aud?: string; key?: SigningKey }): Promise<Record<string, string>>;
  /** POST <mtls>/token with a client assertion (over `agent`, default the one with the client certificate). */
  token(fields: Record<string, string>, opts?: { key?: SigningKey; agent?: Agent }): Promise<RawAnswer>;
  /** A client-credentials access token (scope accounts). */
  clientToken(): Promise<string>;
  /** A PS256 request object signed with Mooring's key: `claims` are merged over a valid code + JARM request. */
  requestObject(claims: Record<string, unknown>): Promise<string>;
  /** `<issuer>/auth?client_id=…&response_type=code&scope=…&request=<jwt>`. */
  authUrl(jwt: string): string;
  close(): Promise<void>;
}

const parse = (text: string): Record<string, unknown> => JSON.parse(text) as Record<string, unknown>;

export async function fapiBankClient(pki: SandboxPki, urls: { publicUrl: string; mtlsUrl: string }, slug: string): Promise<FapiBankClient> {
  const issuer = `${urls.publicUrl.replace(/\/+$/, '')}/sandbox/ob/${slug}`;
  const mtls = `${urls.mtlsUrl.replace(/\/+$/, '')}/sandbox/ob/${slug}`;
  const aisp = `${mtls}/open-banking/v3.1/aisp`;
  const agent = new Agent({ connect: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey } });
  const signingKey = { key: await importPKCS8(pki.signingKey, 'PS256'), kid: pki.signingKeyId };

  const call: FapiBankClient['call'] = async (method, url, opts = {}) => {
    const res = await request(url, {
      method: method as 'GET', dispatcher: opts.agent ?? agent, ...(opts.headers === undefined ? {} : { headers: opts.headers }),
      ...(opts.body === undefined ? {} : { body: opts.body }),
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text, json: () => parse(text) };
  };

  const clientAssertion: FapiBankClient['clientAssertion'] = async ({ aud = `${mtls}/token`, key = signingKey } = {}) => {
    const jwt = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'PS256', kid: key.kid })
      .setIssuer(SANDBOX_CLIENT_ID).setSubject(SANDBOX_CLIENT_ID).setAudience(aud).setIssuedAt().setExpirationTime('5m')
      .sign(key.key);
    return { client_id: SANDBOX_CLIENT_ID, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt };
  };

  const token: FapiBankClient['token'] = async (fields, opts = {}) =>
    call('POST', `${mtls}/token`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, ...(await clientAssertion(opts.key === undefined ? {} : { key: opts.key })) }).toString(),
      ...(opts.agent === undefined ? {} : { agent: opts.agent }),
    });

  return {
    issuer, mtls, aisp, agent, call, clientAssertion, token,
    async clientToken() {
      const r = await token({ grant_type: 'client_credentials', scope: 'accounts' });
      if (r.status !== 200) throw new Error(`client credentials refused: ${r.status} ${r.text}`);
      return String(r.json().access_token);
    },
    async requestObject(claims) {
      const now = Math.floor(Date.now() / 1000);
      const base: Record<string, unknown> = {
        iss: SANDBOX_CLIENT_ID, aud: issuer, client_id: SANDBOX_CLIENT_ID, response_type: 'code', response_mode: 'jwt',
        scope: 'openid accounts', state: randomUUID(), nonce: randomUUID(), nbf: now - 10, exp: now + 300,
        code_challenge: createHash('sha256').update(randomUUID()).digest('base64url'), code_challenge_method: 'S256',
      };
      return new SignJWT({ ...base, ...claims }).setProtectedHeader({ alg: 'PS256', kid: signingKey.kid }).sign(signingKey.key);
    },
    authUrl(jwt) {
      return `${issuer}/auth?${new URLSearchParams({ client_id: SANDBOX_CLIENT_ID, response_type: 'code', scope: 'openid accounts', request: jwt }).toString()}`;
    },
    close: () => agent.close(),
  };
}
