/**
 * The Open Banking sandbox banks (UK OB Read/Write API v3.1 AIS): token endpoint, account-access
 * consents and the login page. The data endpoints are in openbanking-data.ts. Routes live under
 * `/sandbox/ob/:slug`, the catalog entry's baseUrl.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { CatalogEntry } from '../../providers/catalog.ts';
import { errorPage, loginPage } from './authorize-page.ts';
import { behaviourDelay, behaviourFor } from './behaviours.ts';
import {
  BankError, bearerToken, clientAuthenticated, providerGate, providerOf, renderBankErrors, SANDBOX_CLIENT_ID,
  type BankFailure, type SandboxBankDeps,
} from './http.ts';
import { openBankingDataRoutes } from './openbanking-data.ts';
import {
  authoriseConsent, consumeToken, findToken, getConsent, insertConsent, issueToken, revokeTokensOf, setConsentStatus,
  type ConsentRow,
} from './store.ts';
import { DAY_MS } from '../../time.ts';

const ACCESS_TOKEN_TTL_MS = 60 * 60 * 1000;
const CLIENT_TOKEN_TTL_MS = 60 * 60 * 1000;
const CODE_TTL_MS = 10 * 60 * 1000;
const REFRESH_TOKEN_TTL_MS = 400 * DAY_MS;

export const OB_PERMISSIONS = [
  'ReadAccountsBasic', 'ReadAccountsDetail', 'ReadBalances', 'ReadBeneficiariesBasic', 'ReadBeneficiariesDetail',
  'ReadDirectDebits', 'ReadOffers', 'ReadPAN', 'ReadParty', 'ReadPartyPSU', 'ReadProducts', 'ReadScheduledPaymentsBasic',
  'ReadScheduledPaymentsDetail', 'ReadStandingOrdersBasic', 'ReadStandingOrdersDetail', 'ReadStatementsBasic',
  'ReadStatementsDetail', 'ReadTransactionsBasic', 'ReadTransactionsCredits', 'ReadTransactionsDebits', 'ReadTransactionsDetail',
] as const;

const Slug = Type.Object({ slug: Type.String() });
const SlugAndId = Type.Object({ slug: Type.String(), consentId: Type.String() });
const TokenBody = Type.Object({
  grant_type: Type.String(),
  code: Type.Optional(Type.String()),
  redirect_uri: Type.Optional(Type.String()),
  refresh_token: Type.Optional(Type.String()),
  scope: Type.Optional(Type.String()),
  client_id: Type.Optional(Type.String()),
  client_secret: Type.Optional(Type.String()),
});
const ConsentBody = Type.Object({
  Data: Type.Object({
    Permissions: Type.Array(Type.String(), { minItems: 1 }),
    ExpirationDateTime: Type.Optional(Type.String()),
    TransactionFromDateTime: Type.Optional(Type.String()),
    TransactionToDateTime: Type.Optional(Type.String()),
  }),
  Risk: Type.Optional(Type.Object({})),
});
const AuthorizeQuery = Type.Object({
  client_id: Type.Optional(Type.String()),
  redirect_uri: Type.Optional(Type.String()),
  state: Type.Optional(Type.String()),
  consent_id: Type.Optional(Type.String()),
  request: Type.Optional(Type.String()),
  response_type: Type.Optional(Type.String()),
  scope: Type.Optional(Type.String()),
});
const AuthorizeForm = Type.Object({
  consent_id: Type.String(),
  redirect_uri: Type.String(),
  state: Type.Optional(Type.String()),
  username: Type.Optional(Type.String()),
  password: Type.Optional(Type.String()),
  decision: Type.Optional(Type.String()),
});

/** Errors in each route's own shape: OAuth on the token endpoint, HTML on the login page, OB elsewhere. */
function renderObError(f: BankFailure, req: FastifyRequest, reply: FastifyReply): unknown {
  const route = req.routeOptions.url ?? '';
  if (route.endsWith('/token')) return { error: f.code, error_description: f.message };
  if (route.endsWith('/authorize')) {
    void reply.type('text/html; charset=utf-8');
    return errorPage('This request cannot be completed', f.message);
  }
  return { Code: String(f.status), Id: randomUUID(), Message: f.message, Errors: [{ ErrorCode: f.code, Message: f.message }] };
}

export function consentBody(c: ConsentRow, provider: CatalogEntry): unknown {
  return {
    Data: {
      ConsentId: c.id,
      CreationDateTime: c.createdAt.toISOString(),
      Status: c.status,
      StatusUpdateDateTime: c.statusUpdatedAt.toISOString(),
      Permissions: c.permissions,
      ...(c.expiresAt === null ? {} : { ExpirationDateTime: c.expiresAt.toISOString() }),
    },
    Risk: {},
    Links: { Self: `${provider.baseUrl}/aisp/account-access-consents/${c.id}` },
    Meta: { TotalPages: 1 },
  };
}

async function requireClientToken(deps: SandboxBankDeps, req: FastifyRequest, provider: CatalogEntry): Promise<void> {
  const token = bearerToken(req);
  if (token === null || (await findToken(deps.db, token, 'client', provider.id)) === null) {
    throw new BankError(401, 'UK.OBIE.Unauthorised', 'A valid client credentials token is required', { 'www-authenticate': 'Bearer error="invalid_token"' });
  }
}

/** Reads consent id, redirect URI and state from an (unverified, sandbox) OpenID request object. */
function requestObjectParams(request: string | undefined): { consentId?: string; redirectUri?: string; state?: string } {
  const payload = request?.split('.')[1];
  if (payload === undefined) return {};
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      redirect_uri?: unknown; state?: unknown;
      claims?: { id_token?: { openbanking_intent_id?: { value?: unknown } }; userinfo?: { openbanking_intent_id?: { value?: unknown } } };
    };
    const intent = claims.claims?.id_token?.openbanking_intent_id?.value ?? claims.claims?.userinfo?.openbanking_intent_id?.value;
    const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    return { consentId: str(intent), redirectUri: str(claims.redirect_uri), state: str(claims.state) };
  } catch {
    throw new BankError(400, 'invalid_request_object', 'The request object could not be read');
  }
}

function checkRedirectUri(deps: SandboxBankDeps, uri: string | undefined): string {
  if (uri !== undefined && deps.redirectUriAllowed(uri)) return uri;
  throw new BankError(400, 'invalid_request', 'redirect_uri is not a redirect URI registered for this client');
}

async function awaitingConsent(deps: SandboxBankDeps, id: string | undefined, provider: CatalogEntry): Promise<ConsentRow> {
  const consent = id === undefined ? null : await getConsent(deps.db, id, provider.id);
  if (consent === null) throw new BankError(400, 'invalid_request', 'This authorisation request does not name a consent we know');
  if (consent.status !== 'AwaitingAuthorisation') throw new BankError(400, 'invalid_request', 'This consent has already been answered');
  return consent;
}

const redirectWith = (redirectUri: string, params: Record<string, string | undefined>): string => {
  const u = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.searchParams.set(k, v);
  return u.toString();
};

export async function openBankingRoutes(app: FastifyInstance, deps: SandboxBankDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.addHook('onRequest', providerGate(deps, 'openbanking'));
  r.addHook('onSend', async (req, reply) => {
    const id = req.headers['x-fapi-interaction-id'];
    reply.header('x-fapi-interaction-id', typeof id === 'string' && id !== '' ? id : randomUUID());
  });
  renderBankErrors(r, renderObError);
  const P = '/sandbox/ob/:slug';

  r.post(`${P}/token`, { schema: { params: Slug, body: TokenBody } }, async (req) => {
    const provider = providerOf(req);
    const body = req.body;
    if (!clientAuthenticated(req, deps.sandboxClientSecret, body)) {
      throw new BankError(401, 'invalid_client', 'Client authentication failed', { 'www-authenticate': 'Basic realm="sandbox"' });
    }
    const tokenAnswer = async (consent: ConsentRow, refreshToken: string): Promise<unknown> => {
      await behaviourDelay(consent.behaviour, deps.slowCallMs);
      const accessToken = await issueToken(deps.db, { kind: 'access', providerId: provider.id, subjectId: consent.id, ttlMs: ACCESS_TOKEN_TTL_MS });
      return { access_token: accessToken, token_type: 'Bearer', expires_in: ACCESS_TOKEN_TTL_MS / 1000, refresh_token: refreshToken, scope: 'openid accounts' };
    };
    const liveConsent = async (id: string | null): Promise<ConsentRow> => {
      const consent = id === null ? null : await getConsent(deps.db, id, provider.id);
      if (consent === null || consent.status !== 'Authorised') throw new BankError(400, 'invalid_grant', 'The consent is not authorised');
      if (consent.expiresAt !== null && consent.expiresAt <= deps.clock.now()) throw new BankError(400, 'invalid_grant', 'The consent has expired');
      return consent;
    };
    switch (body.grant_type) {
      case 'client_credentials': {
        const token = await issueToken(deps.db, { kind: 'client', providerId: provider.id, subjectId: null, ttlMs: CLIENT_TOKEN_TTL_MS });
        return { access_token: token, token_type: 'Bearer', expires_in: CLIENT_TOKEN_TTL_MS / 1000, scope: 'accounts' };
      }
      case 'authorization_code': {
        const code = body.code === undefined ? null : await consumeToken(deps.db, body.code, 'code', provider.id);
        if (code === null || code.redirectUri !== body.redirect_uri) throw new BankError(400, 'invalid_grant', 'The authorisation code is not valid');
        const consent = await liveConsent(code.subjectId);
        const refreshToken = await issueToken(deps.db, { kind: 'refresh', providerId: provider.id, subjectId: consent.id, ttlMs: REFRESH_TOKEN_TTL_MS });
        return tokenAnswer(consent, refreshToken);
      }
      case 'refresh_token': {
        const refresh = body.refresh_token === undefined ? null : await findToken(deps.db, body.refresh_token, 'refresh', provider.id);
        if (refresh === null || body.refresh_token === undefined) throw new BankError(400, 'invalid_grant', 'The refresh token is not valid');
        return tokenAnswer(await liveConsent(refresh.subjectId), body.refresh_token);
      }
      default:
        throw new BankError(400, 'unsupported_grant_type', 'grant_type must be client_credentials, authorization_code or refresh_token');
    }
  });

  r.post(`${P}/aisp/account-access-consents`, { schema: { params: Slug, body: ConsentBody } }, async (req, reply) => {
    const provider = providerOf(req);
    await requireClientToken(deps, req, provider);
    const { Permissions, ExpirationDateTime } = req.body.Data;
    const unknown = Permissions.filter((p) => !(OB_PERMISSIONS as readonly string[]).includes(p));
    if (unknown.length > 0) throw new BankError(400, 'UK.OBIE.Field.Invalid', `Unknown permissions: ${unknown.join(', ')}`);
    const now = deps.clock.now();
    let expiresAt: Date | null = null;
    if (ExpirationDateTime !== undefined) {
      expiresAt = new Date(ExpirationDateTime);
      if (Number.isNaN(expiresAt.getTime())) throw new BankError(400, 'UK.OBIE.Field.InvalidDate', 'ExpirationDateTime must be an ISO 8601 date-time');
      if (expiresAt <= now) throw new BankError(400, 'UK.OBIE.Field.InvalidDate', 'ExpirationDateTime must be in the future');
    }
    const consent = await insertConsent(deps.db, { providerId: provider.id, permissions: [...new Set(Permissions)], expiresAt, now });
    return reply.status(201).send(consentBody(consent, provider));
  });

  r.get(`${P}/aisp/account-access-consents/:consentId`, { schema: { params: SlugAndId } }, async (req) => {
    const provider = providerOf(req);
    await requireClientToken(deps, req, provider);
    const consent = await getConsent(deps.db, req.params.consentId, provider.id);
    if (consent === null) throw new BankError(404, 'UK.OBIE.Resource.NotFound', 'No such consent');
    return consentBody(consent, provider);
  });

  r.delete(`${P}/aisp/account-access-consents/:consentId`, { schema: { params: SlugAndId } }, async (req, reply) => {
    const provider = providerOf(req);
    await requireClientToken(deps, req, provider);
    const consent = await getConsent(deps.db, req.params.consentId, provider.id);
    if (consent === null) throw new BankError(404, 'UK.OBIE.Resource.NotFound', 'No such consent');
    await behaviourDelay(consent.behaviour, deps.slowCallMs);
    await setConsentStatus(deps.db, consent.id, 'Revoked', deps.clock.now());
    await revokeTokensOf(deps.db, consent.id);
    return reply.status(204).send();
  });

  r.get(`${P}/authorize`, { schema: { params: Slug, querystring: AuthorizeQuery } }, async (req, reply) => {
    const provider = providerOf(req);
    const q = req.query;
    if (q.client_id !== SANDBOX_CLIENT_ID) throw new BankError(400, 'invalid_client', 'This application is not registered with the bank');
    const fromRequest = requestObjectParams(q.request);
    const redirectUri = checkRedirectUri(deps, fromRequest.redirectUri ?? q.redirect_uri);
    const consent = await awaitingConsent(deps, fromRequest.consentId ?? q.consent_id, provider);
    const page = loginPage({
      bankName: provider.name, consentId: consent.id, redirectUri, state: fromRequest.state ?? q.state ?? '',
      permissions: consent.permissions, expiresAt: consent.expiresAt,
    });
    return reply.type('text/html; charset=utf-8').send(page);
  });

  r.post(`${P}/authorize`, { schema: { params: Slug, body: AuthorizeForm } }, async (req, reply) => {
    const provider = providerOf(req);
    const form = req.body;
    const redirectUri = checkRedirectUri(deps, form.redirect_uri);
    const consent = await awaitingConsent(deps, form.consent_id, provider);
    const now = deps.clock.now();
    if (form.decision === 'cancel') {
      await setConsentStatus(deps.db, consent.id, 'Rejected', now);
      return reply.redirect(redirectWith(redirectUri, { error: 'access_denied', error_description: 'The customer cancelled', state: form.state }), 303);
    }
    const username = (form.username ?? '').trim();
    if (username === '') {
      const page = loginPage({
        bankName: provider.name, consentId: consent.id, redirectUri, state: form.state ?? '',
        permissions: consent.permissions, expiresAt: consent.expiresAt, error: 'Enter your username.',
      });
      return reply.status(400).type('text/html; charset=utf-8').send(page);
    }
    if (!(await authoriseConsent(deps.db, consent.id, username, behaviourFor(username), now))) {
      throw new BankError(400, 'invalid_request', 'This consent has already been answered');
    }
    const code = await issueToken(deps.db, { kind: 'code', providerId: provider.id, subjectId: consent.id, ttlMs: CODE_TTL_MS, redirectUri });
    return reply.redirect(redirectWith(redirectUri, { code, state: form.state }), 303);
  });

  await openBankingDataRoutes(r, deps);
}
