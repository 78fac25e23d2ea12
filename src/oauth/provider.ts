/**
 * The OpenID provider (oidc-provider) that issues Mooring's tokens: discovery, JWKS, RFC 7591
 * registration guarded by the admin token, client authentication, request objects, PAR, the
 * claims parameter, client_credentials with `sub`, and the browser journeys' interactions.
 */
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Db } from '../db/db.ts';
import type { SecretBox } from '../crypto/secrets.ts';
import { oidcAdapterFactory } from './adapter.ts';
import { registerClientCredentialsGrant } from './client-credentials.ts';
import { enforceClientAuthMethod } from './client-auth-method.ts';
import type { ServerKeys } from './keys.ts';
import type { TokenCache } from './token-cache.ts';
import { ALL_STATIC_SCOPES, API_SCOPES, BANK_SCOPE_PREFIX, JOURNEY_SCOPES, splitScope } from './scopes.ts';
import { renderPage, escapeHtml } from '../web/html.ts';
import { paymentAsked } from '../journeys/request.ts';

export const OIDC_PREFIX = '/oidc';
export const MH_CLAIMS = ['mh:con_id', 'mh:sync', 'mh:consent', 'mh:cat_type', 'mh:payment'] as const;

/** Journey scopes that always need Mooring's pages, even when an earlier grant would cover them. */
const needsJourney = (scope: string | undefined): boolean =>
  splitScope(scope).some((s) => s.startsWith(BANK_SCOPE_PREFIX) || s === 'reauth' || s === 'reconsent' || s === 'refresh');

export interface ProviderDeps {
  db: Db;
  /** Seals client secrets at rest. */
  secrets: SecretBox;
  issuer: string;
  keys: ServerKeys;
  adminToken: string;
  /** `id:<bankId>` for every provider in the catalog: the connect journeys' scopes. */
  bankScopes: readonly string[];
  /** Tokens this process issued, so their first use needs no database lookup. */
  tokenCache: TokenCache;
  /** Looks up which connection (and first sync) the journey behind a grant produced. */
  journeyOutcome(grantId: string): Promise<{ connectionId: string; syncId: string | null } | null>;
}

function policy(): interactionPolicy.Prompt[] {
  const prompts = interactionPolicy.base();
  const consent = prompts.get('consent');
  if (consent === undefined) throw new Error('oidc-provider has no consent prompt');
  consent.checks.add(
    new interactionPolicy.Check('mooring_journey', 'a connection journey is required', (ctx: KoaContextWithOIDC) =>
      needsJourney(ctx.oidc.params?.scope as string | undefined) && !ctx.oidc.result?.consent
        ? interactionPolicy.Check.REQUEST_PROMPT
        : interactionPolicy.Check.NO_NEED_TO_PROMPT,
    ),
  );
  return [...prompts];
}

export function createOidcProvider(deps: ProviderDeps): Provider {
  const configuration: Configuration = {
    adapter: oidcAdapterFactory(deps.db, deps.secrets),
    jwks: deps.keys.jwks as Configuration['jwks'],
    cookies: {
      keys: deps.keys.cookieKeys,
      long: { signed: true, sameSite: 'lax' },
      short: { signed: true, sameSite: 'lax' },
    },
    // The id:<bankId> scopes are declared so oidc-provider keeps them in the request (it drops unknown scopes).
    scopes: [...ALL_STATIC_SCOPES, ...deps.bankScopes],
    claims: {
      openid: ['sub'],
      ...Object.fromEntries(MH_CLAIMS.map((c) => [c, null])),
    },
    extraParams: {
      // Runs once the client and redirect_uri are checked (and a request object merged), so the refusal
      // is an OAuth error redirect to the client rather than a journey that ends on an error page.
      enableAsync(ctx) {
        const asked = paymentAsked({ scope: ctx.oidc.params?.scope, claims: ctx.oidc.params?.claims });
        if (asked !== null) throw new errors.InvalidScope(`payments are not supported by Mooring (the request asks for ${asked})`, String(ctx.oidc.params?.scope ?? ''));
      },
      expirationDateTime: null,
      transactionFromDateTime: null,
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'HS256'],
      requestObjectSigningAlgValues: ['HS256', 'RS256', 'PS256', 'ES256'],
      idTokenSigningAlgValues: ['RS256', 'PS256', 'ES256'],
    },
    responseTypes: ['code', 'code id_token', 'id_token', 'none'],
    pkce: { required: () => false },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    extraClientMetadata: {
      // `scope` is standard metadata, but oidc-provider offers no hook to default it. This validator runs
      // for the listed property whenever a client is registered or loaded, and adds the journey scopes
      // (including id:<bankId> for the current catalog) to the API scopes the client registered.
      properties: ['software_id'],
      validator(_ctx, key, _value, metadata) {
        if (key !== 'software_id') return;
        // PostgreSQL cannot store NUL characters; refuse them as invalid metadata rather than fail later.
        if (JSON.stringify(metadata).includes('\\u0000')) throw new errors.InvalidClientMetadata('client metadata must not contain NUL characters');
        const requested = splitScope(metadata.scope as string | undefined).filter(
          (s) => !(JOURNEY_SCOPES as readonly string[]).includes(s) && !s.startsWith(BANK_SCOPE_PREFIX),
        );
        const api = requested.length === 0 ? [...API_SCOPES] : requested;
        metadata.scope = [...JOURNEY_SCOPES, ...deps.bankScopes, ...api].join(' ');
      },
    },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true, initialAccessToken: deps.adminToken, issueRegistrationAccessToken: false },
      claimsParameter: { enabled: true },
      clientCredentials: { enabled: true },
      pushedAuthorizationRequests: { enabled: true },
      requestObjects: { enabled: true, requireSignedRequestObject: false },
      resourceIndicators: { enabled: false },
      introspection: { enabled: false },
      // RFC 7009: a client revokes its own tokens; every process stops accepting them within a second.
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: false },
      userinfo: { enabled: true },
    },
    interactions: {
      policy: policy(),
      url: (_ctx, interaction) => `/connect/${interaction.uid}`,
    },
    ttl: {
      AccessToken: 3600,
      ClientCredentials: 3600,
      AuthorizationCode: 600,
      IdToken: 3600,
      RefreshToken: 30 * 24 * 3600,
      Interaction: 3600,
      Session: 24 * 3600,
      Grant: 365 * 24 * 3600,
      PushedAuthorizationRequest: 300,
    },
    // Opaque tokens store what this answers as their `extra`; keep the `sub` the client_credentials grant bound.
    extraTokenClaims: (_ctx, token) => (token.kind === 'ClientCredentials' ? token.extra : undefined),
    async findAccount(_ctx, sub, token) {
      const grantId = token?.grantId;
      const outcome = grantId === undefined ? null : await deps.journeyOutcome(grantId);
      return {
        accountId: sub,
        async claims() {
          const claims: Record<string, unknown> = { sub };
          if (outcome !== null) {
            claims['mh:con_id'] = outcome.connectionId;
            if (outcome.syncId !== null) claims['mh:sync'] = outcome.syncId;
          }
          return claims as { sub: string };
        },
      };
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = renderPage({
        title: 'Something went wrong',
        body: `<p>${escapeHtml(String(out.error_description ?? out.error))}</p><p class="muted">Error code: <code>${escapeHtml(String(out.error))}</code></p>`,
      });
    },
  };
  const provider = new Provider(deps.issuer, configuration);
  // mount.ts sets Host and X-Forwarded-Host/-Proto from PUBLIC_URL on every request, so every URL
  // the provider derives (discovery, redirects) is PUBLIC_URL-based whatever the client sent.
  provider.proxy = true;
  // The official client refuses to start when revocation is advertised without its signing algorithms
  // (it authenticates there as at the token endpoint); oidc-provider does not list them itself.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'discovery' && typeof ctx.body === 'object' && ctx.body !== null) {
      const body = ctx.body as Record<string, unknown>;
      body.revocation_endpoint_auth_methods_supported = body.token_endpoint_auth_methods_supported;
      body.revocation_endpoint_auth_signing_alg_values_supported = body.token_endpoint_auth_signing_alg_values_supported;
    }
  });
  enforceClientAuthMethod(provider);
  registerClientCredentialsGrant(provider, deps.db, deps.tokenCache);
  // A token revoked here is refused here at once; other processes' caches let it go within a second.
  provider.on('client_credentials.destroyed', (token: { jti: string }) => deps.tokenCache.delete(token.jti));
  return provider;
}
