/**
 * The Open Banking sandbox banks' website, on Mooring's port under each bank's issuer path
 * `/sandbox/ob/:slug` (SPEC section 10, sandbox): OpenID discovery, JWKS and the authorization
 * endpoint of the bank's authorization server (fapi-provider.ts), and its login page (the
 * interaction), where the customer approves or denies the account-access consent the request
 * object names in `openbanking_intent_id`. The machine-facing endpoints (token, consents,
 * resources) are on the mutual-TLS listener only (openbanking-api.ts); here the token endpoint
 * refuses every client (no client certificate).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { errors } from 'oidc-provider';
import type { CatalogEntry } from '../../providers/catalog.ts';
import { errorPage, loginPage } from './authorize-page.ts';
import { behaviourFor } from './behaviours.ts';
import { INTENT_CLAIM, type SandboxObBanks } from './fapi-provider.ts';
import { BankError, providerGate, providerOf, renderBankErrors, type BankFailure, type SandboxBankDeps } from './http.ts';
import { authoriseConsent, getConsent, setConsentStatus, type ConsentRow } from './store.ts';

const SlugAndUid = Type.Object({ slug: Type.String(), uid: Type.String() });
const LoginForm = Type.Object({
  username: Type.Optional(Type.String()),
  password: Type.Optional(Type.String()),
  decision: Type.Optional(Type.String()),
});

/** Endpoints of the bank's authorization server served on Mooring's port (the others need mutual TLS). */
const WEB_ENDPOINTS = /^\/(\.well-known\/openid-configuration|jwks|auth(\/[A-Za-z0-9_-]+)?)$/;
const MTLS_ONLY = /^\/(token(\/revocation)?|me)$/;
/** Endpoints machines call: their errors are OAuth JSON, the others' an HTML page. */
const MACHINE_ENDPOINTS = /^\/(token(\/revocation)?|me|jwks|\.well-known\/openid-configuration)$/;

const html = (reply: FastifyReply): FastifyReply => reply.type('text/html; charset=utf-8');

function renderWebError(f: BankFailure, req: FastifyRequest, reply: FastifyReply): unknown {
  if (MACHINE_ENDPOINTS.test(`/${(req.params as { '*'?: string })['*'] ?? ''}`)) {
    return { error: f.code, error_description: f.message };
  }
  void html(reply);
  return errorPage('This request cannot be completed', f.message);
}

/** The ConsentId the authorization request names in its (verified) claims parameter. */
function intentOf(params: Record<string, unknown>): string | null {
  if (typeof params.claims !== 'string') return null;
  try {
    const claims = JSON.parse(params.claims) as Record<string, Record<string, { value?: unknown } | null> | undefined>;
    const value = claims.id_token?.[INTENT_CLAIM]?.value ?? claims.userinfo?.[INTENT_CLAIM]?.value;
    return typeof value === 'string' ? value : null;
  } catch {
    return null;
  }
}

export async function openBankingWebRoutes(app: FastifyInstance, deps: SandboxBankDeps, banks: SandboxObBanks): Promise<void> {
  // The authorization server reads its own request bodies: no parsers in this scope.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    scope.addHook('onRequest', providerGate(deps, 'openbanking'));
    renderBankErrors(scope, renderWebError);
    scope.all('/sandbox/ob/:slug/*', async (req, reply) => {
      const provider = providerOf(req);
      const rest = `/${(req.params as { '*': string })['*']}`;
      if (MTLS_ONLY.test(rest)) {
        throw new BankError(401, 'invalid_client', 'This endpoint requires mutual TLS: use the mtls_endpoint_aliases of the discovery document');
      }
      if (!WEB_ENDPOINTS.test(rest)) throw new BankError(404, 'not_found', 'No such page');
      const query = req.raw.url?.includes('?') === true ? req.raw.url.slice(req.raw.url.indexOf('?')) : '';
      reply.hijack();
      // The bank's own pages (errors) must not be framed by other sites either.
      reply.raw.setHeader('x-frame-options', 'DENY');
      reply.raw.setHeader('content-security-policy', "frame-ancestors 'none'");
      await banks.handle(provider.bankRef, `${rest}${query}`, banks.deps.publicUrl, req.ip, req.raw, reply.raw);
    });
  });

  await app.register(async (scope) => {
    const r = scope.withTypeProvider<TypeBoxTypeProvider>();
    r.addHook('onRequest', providerGate(deps, 'openbanking'));
    renderBankErrors(r, (f, _req, reply) => {
      void html(reply);
      return errorPage('This request cannot be completed', f.message);
    });

    /** The interaction's consent, or the OAuth error the authorization request ends with. */
    const interaction = async (req: FastifyRequest, reply: FastifyReply, provider: CatalogEntry) => {
      const oidc = banks.provider(provider.bankRef);
      let details;
      try {
        details = await oidc.interactionDetails(req.raw, reply.raw);
      } catch (err) {
        if (err instanceof errors.SessionNotFound) throw new BankError(400, 'invalid_request', 'This login page has expired: go back to the application and start again');
        throw err;
      }
      const intent = intentOf(details.params);
      const consent = intent === null ? null : await getConsent(deps.db, intent, provider.id);
      const now = deps.clock.now();
      const problem = consent === null ? 'The authorisation request does not name an account-access consent of this bank'
        : consent.status !== 'AwaitingAuthorisation' ? `The consent is ${consent.status}: it cannot be authorised again`
          : consent.expiresAt !== null && consent.expiresAt <= now ? 'The consent has expired' : null;
      return { oidc, details, consent, problem, now };
    };
    const finish = async (reply: FastifyReply, to: string): Promise<FastifyReply> => reply.redirect(to, 303);

    r.get('/sandbox/ob/:slug/login/:uid', { schema: { params: SlugAndUid } }, async (req, reply) => {
      const provider = providerOf(req);
      const { oidc, consent, problem } = await interaction(req, reply, provider);
      if (problem !== null || consent === null) {
        return finish(reply, await oidc.interactionResult(req.raw, reply.raw, { error: 'invalid_request', error_description: problem ?? '' }, { mergeWithLastSubmission: false }));
      }
      return html(reply).send(loginPage({ bankName: provider.name, action: req.params.uid, permissions: consent.permissions, expiresAt: consent.expiresAt }));
    });

    r.post('/sandbox/ob/:slug/login/:uid', { schema: { params: SlugAndUid, body: LoginForm } }, async (req, reply) => {
      const provider = providerOf(req);
      const { oidc, details, consent, problem, now } = await interaction(req, reply, provider);
      const result = async (r: Parameters<typeof oidc.interactionResult>[2]): Promise<FastifyReply> =>
        finish(reply, await oidc.interactionResult(req.raw, reply.raw, r, { mergeWithLastSubmission: false }));
      if (problem !== null || consent === null) return result({ error: 'invalid_request', error_description: problem ?? '' });
      if (req.body.decision === 'cancel') {
        await setConsentStatus(deps.db, consent.id, 'Rejected', now);
        return result({ error: 'access_denied', error_description: 'The customer cancelled' });
      }
      const username = (req.body.username ?? '').trim();
      if (username === '') {
        const page = loginPage({
          bankName: provider.name, action: req.params.uid, permissions: consent.permissions, expiresAt: consent.expiresAt, error: 'Enter your username.',
        });
        return html(reply).status(400).send(page);
      }
      if (!(await authoriseConsent(deps.db, consent.id, username, behaviourFor(username), now))) {
        return result({ error: 'invalid_request', error_description: 'This consent has already been answered' });
      }
      return result({ login: { accountId: consent.id }, consent: { grantId: await grantFor(oidc, consent, String(details.params.client_id)) } });
    });
  });
}

/** The grant the customer gives: `openid accounts` and the intent claim, for this consent. */
async function grantFor(oidc: ReturnType<SandboxObBanks['provider']>, consent: ConsentRow, clientId: string): Promise<string> {
  const grant = new oidc.Grant({ accountId: consent.id, clientId });
  grant.addOIDCScope('openid accounts');
  grant.addOIDCClaims([INTENT_CLAIM]);
  return grant.save();
}
