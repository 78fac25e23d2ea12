/**
 * The Enable Banking sandbox counterpart (SPEC section 10), served under `/sandbox/enablebanking`
 * in sandbox mode and following the Enable Banking API: `GET /application`, `GET /aspsps`,
 * `POST /auth`, its own authorisation page (a plain form, no JavaScript; the sandbox username picks
 * the behaviour), the redirect back with `code` and `state` (or `error`), `POST /sessions`,
 * `GET|DELETE /sessions/{id}`, and the account endpoints (enablebanking-data.ts).
 *
 * Every API call must carry an application JWT that verifies in full: RS256 with the registered
 * application's public key (found by `kid`), `iss` "enablebanking.com", `aud`
 * "api.enablebanking.com", unexpired (real time: JWT lifetimes are real-world timers) and a lifetime
 * of at most 86 400 s. Applications are the providers-file entries with `adapter: enablebanking`:
 * their `applicationId` and the public half of their `privateKey`. Refusals are Enable Banking's
 * ErrorResponse `{ message, code, error }`. Sessions expire exactly at `valid_until` on the domain clock.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { errorPage, loginPage } from './authorize-page.ts';
import { behaviourFor } from './behaviours.ts';
import { applicationOfRequest, ebError, setApplicationOfRequest, verifyApplicationJwt, type EbDeps } from './enablebanking-auth.ts';
import { ebAccountData, ebAccountRoutes, effectiveStatus, SANDBOX_ASPSPS, sandboxAspsp } from './enablebanking-data.ts';
import {
  answerAuthorization, authorizeSession, getAuthorization, getSession, insertAuthorization, setSessionStatus, type EbSessionRow,
} from './enablebanking-store.ts';
import { BankError, bearerToken, renderBankErrors } from './http.ts';
import { consumeToken, issueToken } from './store.ts';

export const EB_SANDBOX_PATH = '/sandbox/enablebanking';
/** How long an authorisation code may wait for POST /sessions (real time, like every token). */
const CODE_TTL_MS = 10 * 60_000;

const StartAuthorization = Type.Object({
  access: Type.Object({
    valid_until: Type.String(),
    balances: Type.Optional(Type.Boolean()),
    transactions: Type.Optional(Type.Boolean()),
  }),
  aspsp: Type.Object({ name: Type.String(), country: Type.String() }),
  state: Type.String(),
  redirect_url: Type.String({ minLength: 1 }),
  psu_type: Type.Optional(Type.Union([Type.Literal('personal'), Type.Literal('business')])),
  language: Type.Optional(Type.String()),
  psu_id: Type.Optional(Type.String()),
});
const AspspsQuery = Type.Object({
  country: Type.Optional(Type.String()),
  psu_type: Type.Optional(Type.String()),
  service: Type.Optional(Type.String()),
});
const SessionParams = Type.Object({ sessionId: Type.String() });
const AuthParams = Type.Object({ authorizationId: Type.String() });
const LoginForm = Type.Object({
  username: Type.Optional(Type.String()),
  password: Type.Optional(Type.String()),
  decision: Type.Optional(Type.String()),
});

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const psuIdHash = (s: EbSessionRow): string => createHash('sha256').update(`${s.applicationId}|${s.username ?? s.id}`).digest('hex');

/** The session as GET /sessions/{id} shows it. */
function sessionView(s: EbSessionRow, status: string, uids: string[], hashes: string[]): unknown {
  return {
    status,
    accounts: uids,
    accounts_data: uids.map((uid, i) => ({ uid, identification_hash: hashes[i] ?? '', identification_hashes: [hashes[i] ?? ''] })),
    aspsp: s.aspsp,
    psu_type: s.psuType,
    psu_id_hash: psuIdHash(s),
    access: { valid_until: s.validUntil.toISOString(), balances: true, transactions: true },
    created: s.createdAt.toISOString(),
    ...(s.authorizedAt === null ? {} : { authorized: s.authorizedAt.toISOString() }),
    ...(s.closedAt === null ? {} : { closed: s.closedAt.toISOString() }),
  };
}

const callbackUrl = (s: EbSessionRow, params: Record<string, string>): string => {
  const u = new URL(s.redirectUrl);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
};

export async function enableBankingRoutes(app: FastifyInstance, deps: EbDeps): Promise<void> {
  const { publicUrl, applications: catalog } = deps.enableBanking;
  const redirectUrls = [`${publicUrl}/connect/callback`];

  // The API: application JWT on every call, ErrorResponse on every refusal.
  await app.register(async (scope) => {
    const r = scope.withTypeProvider<TypeBoxTypeProvider>();
    renderBankErrors(r, (f) => ({
      message: f.message,
      code: f.status,
      error: /^[A-Z_]+$/.test(f.code) ? f.code : 'WRONG_REQUEST_PARAMETERS',
    }));
    r.addHook('onRequest', async (req) => {
      if (deps.latencyMs !== undefined && deps.latencyMs > 0) await new Promise((res) => setTimeout(res, deps.latencyMs));
      // Application JWTs are real-world credentials: their lifetimes are checked on real time.
      setApplicationOfRequest(req, await verifyApplicationJwt(catalog, bearerToken(req), new Date()));
    });

    r.get(`${EB_SANDBOX_PATH}/application`, async (req) => {
      const { applicationId } = applicationOfRequest(req);
      return {
        name: `Mooring sandbox application ${applicationId}`,
        description: 'An application registered with the Enable Banking sandbox counterpart from the providers file',
        kid: applicationId,
        environment: 'SANDBOX',
        redirect_urls: redirectUrls,
        active: true,
        countries: [...new Set(SANDBOX_ASPSPS.map((a) => a.country))],
        services: ['AIS'],
      };
    });

    r.get(`${EB_SANDBOX_PATH}/aspsps`, { schema: { querystring: AspspsQuery } }, async (req) => {
      const { country, psu_type: psuType, service } = req.query;
      const aspsps = SANDBOX_ASPSPS.filter((a) => (country === undefined || a.country === country)
        && (psuType === undefined || a.psuTypes.includes(psuType))
        && (service === undefined || service === 'AIS'));
      return {
        aspsps: aspsps.map((a) => ({
          name: a.name, country: a.country, logo: `${publicUrl}/bank-icons/${encodeURIComponent(a.name)}`, psu_types: a.psuTypes,
          auth_methods: a.psuTypes.map((t) => ({ name: 'redirect', title: 'Log in at the bank', psu_type: t, approach: 'REDIRECT', hidden_method: false })),
          maximum_consent_validity: a.maximumConsentValiditySeconds, beta: false, bic: a.bic, required_psu_headers: a.requiredPsuHeaders,
          sandbox: { users: [{ username: 'user_ok', password: 'any', otp: '' }] },
        })),
      };
    });

    r.post(`${EB_SANDBOX_PATH}/auth`, { schema: { body: StartAuthorization } }, async (req) => {
      const { applicationId } = applicationOfRequest(req);
      const body = req.body;
      const aspsp = sandboxAspsp(body.aspsp.name, body.aspsp.country);
      if (aspsp === undefined) throw ebError(422, 'WRONG_ASPSP_PROVIDED', 'No such ASPSP');
      if (!redirectUrls.includes(body.redirect_url)) throw ebError(422, 'REDIRECT_URI_NOT_ALLOWED', 'The redirect URL is not whitelisted for this application');
      const psuType = body.psu_type ?? 'personal';
      if (!aspsp.psuTypes.includes(psuType)) throw ebError(422, 'WRONG_REQUEST_PARAMETERS', `The ASPSP does not serve ${psuType} customers`);
      const now = deps.clock.now();
      const validUntil = RFC3339.test(body.access.valid_until) ? new Date(body.access.valid_until) : null;
      if (validUntil === null || Number.isNaN(validUntil.getTime())) throw ebError(422, 'WRONG_REQUEST_PARAMETERS', 'access.valid_until must be an RFC 3339 date-time with an offset');
      if (validUntil <= now) throw ebError(422, 'WRONG_REQUEST_PARAMETERS', 'access.valid_until must be in the future');
      if (validUntil.getTime() > now.getTime() + aspsp.maximumConsentValiditySeconds * 1000) {
        throw ebError(422, 'WRONG_REQUEST_PARAMETERS', `access.valid_until cannot exceed now + maximum_consent_validity (${aspsp.maximumConsentValiditySeconds} s)`);
      }
      const s = await insertAuthorization(deps.db, {
        applicationId, aspsp: { name: aspsp.name, country: aspsp.country }, psuType, validUntil, redirectUrl: body.redirect_url, state: body.state, now,
      });
      return { url: `${publicUrl}${EB_SANDBOX_PATH}/authorize/${s.id}`, authorization_id: s.id, psu_id_hash: psuIdHash(s) };
    });

    r.post(`${EB_SANDBOX_PATH}/sessions`, { schema: { body: Type.Object({ code: Type.String() }) } }, async (req) => {
      const { applicationId } = applicationOfRequest(req);
      const token = await consumeToken(deps.db, req.body.code, 'code', `eb:${applicationId}`);
      const pending = token?.subjectId == null ? null : await getAuthorization(deps.db, token.subjectId);
      if (pending === null || pending.username === null) throw ebError(422, 'WRONG_AUTHORIZATION_CODE', 'The authorization code is not valid');
      const now = deps.clock.now();
      const data = ebAccountData(pending);
      const uids = data.accounts.map(() => randomUUID());
      const sessionId = await deps.db.transaction((tx) => authorizeSession(tx, pending.id, uids, now));
      if (sessionId === null) throw ebError(422, 'ALREADY_AUTHORIZED', 'The authorization has already been used');
      return {
        session_id: sessionId,
        accounts: data.accounts.map((a, i) => data.resource(a, uids[i] ?? '')),
        aspsp: pending.aspsp,
        psu_type: pending.psuType,
        access: { valid_until: pending.validUntil.toISOString(), balances: true, transactions: true },
      };
    });

    r.get(`${EB_SANDBOX_PATH}/sessions/:sessionId`, { schema: { params: SessionParams } }, async (req) => {
      const { applicationId } = applicationOfRequest(req);
      const s = await getSession(deps.db, req.params.sessionId, applicationId);
      if (s === null) throw ebError(404, 'SESSION_DOES_NOT_EXIST', 'No such session');
      const status = await effectiveStatus(deps, s);
      const data = ebAccountData(s);
      const uids = await data.uids(deps.db, s);
      return sessionView(s, status, uids, data.accounts.map((a) => data.identificationHash(a)));
    });

    r.delete(`${EB_SANDBOX_PATH}/sessions/:sessionId`, { schema: { params: SessionParams } }, async (req) => {
      const { applicationId } = applicationOfRequest(req);
      const s = await getSession(deps.db, req.params.sessionId, applicationId);
      if (s === null) throw ebError(404, 'SESSION_DOES_NOT_EXIST', 'No such session');
      if (s.status === 'CLOSED') throw ebError(422, 'CLOSED_SESSION', 'The session is already closed');
      await setSessionStatus(deps.db, s.id, 'CLOSED', deps.clock.now());
      return { message: 'OK' };
    });

    await ebAccountRoutes(r, deps);
  });

  // The bank's website: the customer's login page (HTML, no JavaScript, no application JWT).
  await app.register(async (scope) => {
    const r = scope.withTypeProvider<TypeBoxTypeProvider>();
    const html = (reply: FastifyReply): FastifyReply => reply.type('text/html; charset=utf-8');
    renderBankErrors(r, (f, _req, reply) => {
      void html(reply);
      return errorPage('This request cannot be completed', f.message);
    });
    const pendingOf = async (id: string): Promise<EbSessionRow> => {
      const s = await getAuthorization(deps.db, id);
      if (s === null) throw new BankError(404, 'not_found', 'This authorisation does not exist: go back to the application and start again');
      if (s.status !== 'PENDING_AUTHORIZATION') throw new BankError(400, 'invalid_request', 'This authorisation has already been answered: go back to the application and start again');
      return s;
    };
    const page = (s: EbSessionRow, action: string, extra: { username?: string; error?: string } = {}): string => loginPage({
      bankName: `${s.aspsp.name} (Enable Banking sandbox)`, action, permissions: ['ReadAccountsBasic', 'ReadBalances', 'ReadTransactionsBasic'],
      expiresAt: s.validUntil, ...extra,
    });

    r.get(`${EB_SANDBOX_PATH}/authorize/:authorizationId`, { schema: { params: AuthParams } }, async (req, reply) => {
      const s = await pendingOf(req.params.authorizationId);
      return html(reply).send(page(s, req.params.authorizationId));
    });

    r.post(`${EB_SANDBOX_PATH}/authorize/:authorizationId`, { schema: { params: AuthParams, body: LoginForm } }, async (req, reply) => {
      const s = await pendingOf(req.params.authorizationId);
      if (req.body.decision === 'cancel') {
        await answerAuthorization(deps.db, s.id, { status: 'CANCELLED' });
        return reply.redirect(callbackUrl(s, { state: s.state, error: 'access_denied', error_description: 'The customer cancelled the authorisation' }), 303);
      }
      const username = (req.body.username ?? '').trim();
      if (username === '') return html(reply).status(400).send(page(s, req.params.authorizationId, { error: 'Enter your username.' }));
      if (!(await answerAuthorization(deps.db, s.id, { status: 'RETURNED_FROM_BANK', username, behaviour: behaviourFor(username) }))) {
        throw new BankError(400, 'invalid_request', 'This authorisation has already been answered');
      }
      const code = await issueToken(deps.db, { kind: 'code', providerId: `eb:${s.applicationId}`, subjectId: s.id, ttlMs: CODE_TTL_MS });
      return reply.redirect(callbackUrl(s, { state: s.state, code }), 303);
    });
  });
}
