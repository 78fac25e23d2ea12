/**
 * Mooring as a FAPI 1.0 Advanced client of one Open Banking bank: panva's openid-client does the
 * OAuth and OpenID side (discovery, private_key_jwt or tls_client_auth, request objects, PKCE,
 * JARM or hybrid responses with detached signatures, token grants), and an undici Agent holding
 * the transport certificate makes every machine-facing call mutual TLS (the discovery's
 * `mtls_endpoint_aliases` are used when the bank publishes them).
 *
 * One client per provider and process, built on first use and kept for an hour of real time
 * (a failed build is forgotten at once, so a bank that was down is asked again on the next call).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import * as oidc from 'openid-client';
import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';
import type { CatalogEntry } from '../catalog.ts';
import { failureOfAnswer, HttpStatusFailure, ResponseShapeFailure, startProviderCall } from '../http.ts';
import { ProviderError } from '../provider.ts';
import type { OpenBankingSettings } from '../settings.ts';

const CLIENT_TTL_MS = 60 * 60 * 1000;

export interface ObClient {
  settings: OpenBankingSettings;
  config: oidc.Configuration;
  /** Mutual TLS to the bank's machine-facing endpoints. */
  dispatcher: Dispatcher;
  /** PS256 key and kid for request objects (and client assertions with private_key_jwt). */
  signingKey: oidc.PrivateKey;
}

export interface ObClientOptions {
  timeoutMs: number;
  realNow: () => number;
}

/** The provider's Open Banking settings, or a clear refusal when the catalog entry has none. */
export function settingsOf(provider: CatalogEntry): OpenBankingSettings {
  const s = provider.openbanking;
  if (s === undefined) throw new ProviderError('unavailable', `${provider.name} has no Open Banking settings; the operator must configure it`);
  return s;
}

/** The mutual-TLS agent for a bank: the transport certificate, and the system's trust roots plus the configured ones. */
export function transportAgent(s: OpenBankingSettings): Agent {
  const ca = s.ca === null ? undefined : [...tls.rootCertificates, s.ca];
  return new Agent({
    connect: { cert: s.transportCert, key: s.transportKey, ...(ca === undefined ? {} : { ca }) },
    keepAliveTimeout: 4_000,
  });
}

/** A PEM private key (PKCS#1 or PKCS#8) as a WebCrypto RSA-PSS key for PS256. */
async function ps256Key(pem: string): Promise<oidc.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return crypto.subtle.importKey('pkcs8', der, { name: 'RSA-PSS', hash: 'SHA-256' }, false, ['sign']);
}

/**
 * Fetch through undici with the bank's agent (openid-client's customFetch), recorded in the
 * provider call log. openid-client calls only the endpoints the bank's discovery document names
 * (discovery, keys, token, PAR): their paths carry no ids of a user or a consent, so the path is
 * the endpoint template.
 */
const fetchWith = (dispatcher: Dispatcher): oidc.CustomFetch =>
  async (url, options) => {
    const watch = posts.getStore();
    if (watch !== undefined && (options.method ?? 'GET').toUpperCase() === 'POST') watch.posted = true;
    const endpoint = new URL(url).pathname;
    const recording = startProviderCall(options.method ?? 'GET', endpoint);
    let res: Response;
    try {
      res = (await undiciFetch(url, { ...options, dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as Response;
    } catch (err) {
      recording.end({ status: null, interactionId: null, failure: err });
      throw err;
    }
    const interactionId = res.headers.get('x-fapi-interaction-id');
    recording.end(res.ok ? { status: res.status, interactionId } : { status: res.status, interactionId, failure: await failureOfAnswer(res, endpoint) });
    return res;
  };

const posts = new AsyncLocalStorage<{ posted: boolean }>();

/**
 * Runs an openid-client operation, telling `watch.posted` whether it sent a POST to the bank (the
 * token request of a code grant). A code grant that fails before posting was only checking what
 * the user's browser brought back (the JARM response, the ID token and hashes of a hybrid answer).
 */
export function watchPosts<T>(watch: { posted: boolean }, fn: () => Promise<T>): Promise<T> {
  return posts.run(watch, fn);
}

/**
 * Turns what openid-client throws into the raw failures every adapter throws (toProviderError then
 * decides the kind): an OAuth error answer keeps its status and body, a broken or unverifiable
 * answer is a shape failure. Network failures and time-outs pass through unchanged.
 */
export function fromOidcError(err: unknown, what: string): unknown {
  if (err instanceof oidc.ResponseBodyError) {
    return new HttpStatusFailure(err.status, { error: err.error, error_description: err.error_description }, what);
  }
  if (err instanceof oidc.AuthorizationResponseError) {
    return err;
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) return new HttpStatusFailure(err.status, undefined, what);
  if (err instanceof oidc.ClientError) {
    const cause = (err as { cause?: unknown }).cause;
    if (err.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' && cause instanceof Object && 'status' in cause && typeof cause.status === 'number') {
      return new HttpStatusFailure(cause.status, undefined, what);
    }
    return new ResponseShapeFailure(`${what}: ${err.message}${err.code === undefined ? '' : ` (${err.code})`}`);
  }
  return err;
}

export async function buildObClient(provider: CatalogEntry, opts: ObClientOptions): Promise<ObClient> {
  const settings = settingsOf(provider);
  const dispatcher = transportAgent(settings);
  const key: oidc.PrivateKey = { key: await ps256Key(settings.signingKey), kid: settings.signingKeyId };
  const auth = settings.tokenEndpointAuthMethod === 'tls_client_auth' ? oidc.TlsClientAuth() : oidc.PrivateKeyJwt(key);
  const execute: ((c: oidc.Configuration) => void)[] = settings.responseType === 'code'
    ? [oidc.useJwtResponseMode]
    : [oidc.useCodeIdTokenResponseType, oidc.enableDetachedSignatureResponseChecks];
  const wellKnown = new URL(settings.wellKnownUrl);
  if (wellKnown.protocol === 'http:') execute.push(oidc.allowInsecureRequests);
  const metadata: Partial<oidc.ClientMetadata> = {
    use_mtls_endpoint_aliases: true,
    token_endpoint_auth_method: settings.tokenEndpointAuthMethod,
    id_token_signed_response_alg: 'PS256',
    authorization_signed_response_alg: 'PS256',
    tls_client_certificate_bound_access_tokens: true,
  };
  try {
    const config = await oidc.discovery(wellKnown, settings.clientId, metadata, auth, {
      execute,
      timeout: Math.max(1, Math.ceil(opts.timeoutMs / 1000)),
      [oidc.customFetch]: fetchWith(dispatcher),
      algorithm: 'oidc',
    });
    config[oidc.customFetch] = fetchWith(dispatcher);
    config.timeout = Math.max(1, Math.ceil(opts.timeoutMs / 1000));
    return { settings, config, dispatcher, signingKey: key };
  } catch (err) {
    await dispatcher.close().catch(() => undefined);
    throw fromOidcError(err, `the discovery document of ${provider.name}`);
  }
}

/** Clients by provider id, built on first use and rebuilt after an hour (keys and endpoints may rotate). */
export function obClientCache(opts: ObClientOptions) {
  const clients = new Map<string, { at: number; client: Promise<ObClient> }>();
  return {
    get(provider: CatalogEntry): Promise<ObClient> {
      const now = opts.realNow();
      const hit = clients.get(provider.id);
      if (hit !== undefined && now - hit.at < CLIENT_TTL_MS) return hit.client;
      const client = buildObClient(provider, opts);
      clients.set(provider.id, { at: now, client });
      client.catch(() => {
        if (clients.get(provider.id)?.client === client) clients.delete(provider.id);
      });
      if (hit !== undefined) void hit.client.then((c) => c.dispatcher.close(), () => undefined).catch(() => undefined);
      return client;
    },
    async close(): Promise<void> {
      const all = [...clients.values()];
      clients.clear();
      await Promise.all(all.map((c) => c.client.then((x) => x.dispatcher.close(), () => undefined).catch(() => undefined)));
    },
  };
}

/** Whether a transport certificate and key belong together (used by the providers probe). */
export function certificateMatchesKey(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}
