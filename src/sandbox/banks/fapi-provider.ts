/**
 * The authorization server of each sandbox Open Banking bank: one oidc-provider instance per bank,
 * configured as a UK FAPI 1.0 Advanced (Final) bank (SPEC section 10, sandbox): private_key_jwt or
 * tls_client_auth, certificate-bound tokens, PS256 request objects required, PKCE required, JARM,
 * the claims parameter with `openbanking_intent_id`, rotated refresh tokens. Its models live in
 * `oidc_models` under the kind namespace `sandbox-ob/<slug>` (src/oauth/adapter.ts).
 *
 * The provider's `sub` is the account-access consent's ConsentId: the grant a customer gives is
 * that consent, and the ID token's `openbanking_intent_id` claim names it.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Clock } from '../../clock.ts';
import type { SecretBox } from '../../crypto/secrets.ts';
import type { Db } from '../../db/db.ts';
import { oidcAdapterFactory, sandboxObNamespace } from '../../oauth/adapter.ts';
import type { Catalog } from '../../providers/catalog.ts';
import { publicJwk, subjectDn, type SandboxPki } from '../pki.ts';
import { errorPage } from './authorize-page.ts';
import { SANDBOX_OB_CLIENT_ID, SANDBOX_OB_TLS_CLIENT_ID, sandboxIssuer, sandboxMtlsBase } from './fapi-settings.ts';
import { behaviourDelay } from './behaviours.ts';
import { getConsent } from './store.ts';

export const OB_SCOPES = ['openid', 'accounts'] as const;
export const INTENT_CLAIM = 'openbanking_intent_id';

const HOUR = 3600;
const DAY = 24 * HOUR;

export interface SandboxObBanksDeps {
  db: Db;
  secrets: SecretBox;
  clock: Clock;
  catalog: Catalog;
  pki: SandboxPki;
  publicUrl: string;
  /** The mTLS listener's URL; known once it listens (server.ts sets it). */
  mtlsUrl: string;
  /** How long a `user_slow` customer's token requests take (as every other call of theirs). */
  slowCallMs?: number;
}

// ---- The client certificate of a request (mTLS listener) ------------------------------------

interface PeerCertificate { pem: string; thumbprint: string; subjectDn: string }
const peerCertificates = new WeakMap<object, PeerCertificate | null>();

/** The client certificate the TLS connection presented (verified or not), or null. Computed once per connection. */
export function peerCertificate(req: IncomingMessage): PeerCertificate | null {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return null;
  let found = peerCertificates.get(socket);
  if (found === undefined) {
    const raw = socket.getPeerCertificate(false)?.raw;
    if (raw === undefined || raw.length === 0) {
      found = null;
    } else {
      const cert = new X509Certificate(raw);
      found = { pem: cert.toString(), thumbprint: createHash('sha256').update(raw).digest('base64url'), subjectDn: subjectDn(cert) };
    }
    peerCertificates.set(socket, found);
  }
  return found;
}

/** The connection's certificate chains up to the sandbox CA (the listener's trust). */
export const peerCertificateTrusted = (req: IncomingMessage): boolean => (req.socket as Partial<TLSSocket>).authorized === true;

// ---- The banks ---------------------------------------------------------------------------------

/** The static clients every sandbox bank registers for Mooring (the contract's `mooring` and `mooring-tls`). */
function clients(pki: SandboxPki, publicUrl: string): Configuration['clients'] {
  const jwks = { keys: [{ ...publicJwk(pki.signingKey), kid: pki.signingKeyId, alg: 'PS256', use: 'sig' }] };
  const shared = {
    redirect_uris: [`${publicUrl.replace(/\/+$/, '')}/connect/callback`],
    response_types: ['code', 'code id_token'],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    request_object_signing_alg: 'PS256',
    id_token_signed_response_alg: 'PS256',
    authorization_signed_response_alg: 'PS256',
    tls_client_certificate_bound_access_tokens: true,
    jwks,
  };
  return [
    { ...shared, client_id: SANDBOX_OB_CLIENT_ID, token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'PS256' },
    { ...shared, client_id: SANDBOX_OB_TLS_CLIENT_ID, token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: pki.clientSubjectDn },
  ] as Configuration['clients'];
}

function createBankProvider(deps: SandboxObBanksDeps, slug: string): Provider {
  const issuer = sandboxIssuer(deps.publicUrl, slug);
  const bankKey = { ...(createPrivateKey(deps.pki.bankSigningKey).export({ format: 'jwk' }) as Record<string, unknown>) };
  const bankKid = createHash('sha256').update(`${slug}:${String(bankKey.n)}`).digest('base64url').slice(0, 16);
  const cookieKey = createHash('sha256').update(`sandbox-ob-cookies:${slug}:${deps.pki.bankSigningKey}`).digest('base64url');
  const providerIdOf = (): string | undefined => deps.catalog.all().find((e) => e.adapter === 'openbanking' && e.bankRef === slug)?.id;
  const cookieName = slug.replace(/[^A-Za-z0-9]/g, '_');
  const configuration: Configuration = {
    adapter: oidcAdapterFactory(deps.db, deps.secrets, sandboxObNamespace(slug)),
    clients: clients(deps.pki, deps.publicUrl),
    jwks: { keys: [{ ...bankKey, kid: bankKid, alg: 'PS256', use: 'sig' }] } as Configuration['jwks'],
    cookies: {
      keys: [cookieKey],
      // Mooring's own OpenID provider uses the default names on the same host.
      names: { session: `_ob_${cookieName}_session`, interaction: `_ob_${cookieName}_interaction`, resume: `_ob_${cookieName}_resume` },
      long: { signed: true, sameSite: 'lax' },
      short: { signed: true, sameSite: 'lax' },
    },
    scopes: [...OB_SCOPES],
    claims: { openid: ['sub'], [INTENT_CLAIM]: null },
    clientAuthMethods: ['private_key_jwt', 'tls_client_auth'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['PS256'],
      requestObjectSigningAlgValues: ['PS256'],
      idTokenSigningAlgValues: ['PS256'],
      authorizationSigningAlgValues: ['PS256'],
      userinfoSigningAlgValues: ['PS256'],
    },
    responseTypes: ['code', 'code id_token'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      fapi: { enabled: true, profile: '1.0 Final' },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        getCertificate: (ctx: KoaContextWithOIDC) => peerCertificate(ctx.req)?.pem,
        certificateAuthorized: (ctx: KoaContextWithOIDC) => peerCertificateTrusted(ctx.req),
        certificateSubjectMatches: (ctx: KoaContextWithOIDC, property: string, expected: string) =>
          property === 'tls_client_auth_subject_dn' && peerCertificate(ctx.req)?.subjectDn === expected,
      },
      jwtResponseModes: { enabled: true },
      requestObjects: { enabled: true, requireSignedRequestObject: true },
      claimsParameter: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: false },
    },
    interactions: { url: (_ctx, interaction) => `${issuer}/login/${interaction.uid}` },
    // Each authorisation is a new consent: never reuse an earlier grant of the browser's session.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId;
      return grantId === undefined ? undefined : ctx.oidc.provider.Grant.find(grantId);
    },
    // Tokens outlive the customer's session at the bank (a real bank's online-banking login).
    expiresWithSession: () => false,
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => true,
    ttl: {
      AccessToken: HOUR,
      ClientCredentials: HOUR,
      AuthorizationCode: 600,
      IdToken: HOUR,
      RefreshToken: 400 * DAY,
      Grant: 400 * DAY,
      Interaction: HOUR,
      Session: HOUR,
    },
    // The account is the consent: it exists while the consent is Authorised and unexpired (a refresh
    // of a revoked, rejected or expired consent's token is invalid_grant).
    async findAccount(_ctx, sub) {
      const providerId = providerIdOf();
      const consent = providerId === undefined ? null : await getConsent(deps.db, sub, providerId);
      if (consent === null || consent.status !== 'Authorised') return undefined;
      if (consent.expiresAt !== null && consent.expiresAt <= deps.clock.now()) return undefined;
      await behaviourDelay(consent.behaviour, deps.slowCallMs ?? 0);
      return { accountId: sub, claims: () => ({ sub, [INTENT_CLAIM]: sub }) };
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = errorPage('This request cannot be completed', String(out.error_description ?? out.error));
    },
  };
  const provider = new Provider(issuer, configuration);
  provider.proxy = true;
  // RFC 8705 section 5: the machine-facing endpoints on the mutual-TLS listener.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'discovery' && typeof ctx.body === 'object' && ctx.body !== null) {
      const body = ctx.body as Record<string, unknown>;
      const mtls = sandboxMtlsBase(deps.mtlsUrl, slug);
      body.mtls_endpoint_aliases = { token_endpoint: `${mtls}/token`, revocation_endpoint: `${mtls}/token/revocation`, userinfo_endpoint: `${mtls}/me` };
      body.revocation_endpoint_auth_methods_supported = body.token_endpoint_auth_methods_supported;
      body.revocation_endpoint_auth_signing_alg_values_supported = body.token_endpoint_auth_signing_alg_values_supported;
    }
  });
  return provider;
}

/** The sandbox Open Banking banks' authorization servers, created on first use. */
export class SandboxObBanks {
  readonly deps: SandboxObBanksDeps;
  readonly #providers = new Map<string, Provider>();
  readonly #callbacks = new Map<string, (req: IncomingMessage, res: ServerResponse) => Promise<void>>();

  constructor(deps: SandboxObBanksDeps) {
    this.deps = deps;
  }

  provider(slug: string): Provider {
    let p = this.#providers.get(slug);
    if (p === undefined) {
      p = createBankProvider(this.deps, slug);
      this.#providers.set(slug, p);
    }
    return p;
  }

  /**
   * Hands a request to bank `slug`'s provider as `<path>` under its issuer path, with URLs built
   * from `baseUrl` (PUBLIC_URL on Mooring's port, the mTLS URL on the mTLS listener).
   */
  async handle(slug: string, path: string, baseUrl: string, clientIp: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let callback = this.#callbacks.get(slug);
    if (callback === undefined) {
      callback = this.provider(slug).callback() as (req: IncomingMessage, res: ServerResponse) => Promise<void>;
      this.#callbacks.set(slug, callback);
    }
    const prefix = new URL(sandboxIssuer(this.deps.publicUrl, slug)).pathname;
    const raw = req as IncomingMessage & { originalUrl?: string };
    raw.url = path.startsWith('/') ? path : `/${path}`;
    raw.originalUrl = `${prefix}${raw.url}`;
    const base = new URL(baseUrl);
    raw.headers.host = base.host;
    raw.headers['x-forwarded-host'] = base.host;
    raw.headers['x-forwarded-proto'] = base.protocol.slice(0, -1);
    raw.headers['x-forwarded-for'] = clientIp;
    await callback(raw, res);
  }
}
