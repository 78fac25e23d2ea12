/**
 * The GoCardless Bank Account Data sandbox counterpart (SPEC §10), served by Mooring in sandbox
 * mode under /sandbox/gocardless/api/v2 and following GoCardless's documented API
 * (docs/upstreams-enablebanking-gocardless.md): trailing-slash paths; `/token/new/` checks the
 * secret pair and issues JWT-shaped tokens whose `exp` every call checks (401 "Invalid token");
 * institutions with their limits as strings; end-user agreements validated against GoCardless's
 * ranges and the institution's maxima (400); requisitions CR → GC → UA → LN (or RJ) through their
 * own consent page at /sandbox/gocardless/link/:id/, which sends the user back to
 * `redirect?ref=<reference>` (`&error=…&details=…` on cancel); accounts with statuses, details,
 * balances and transactions; the per-account, per-scope limit of 4 successful calls a day with
 * GoCardless's rate-limit headers and its 429 body; the agreement's expiry at accepted +
 * access_valid_for_days on the domain clock (401 EUA expired, requisition EX, account EXPIRED);
 * suspension (409, SU, SUSPENDED); DELETE of a requisition. Token lifetimes are real time.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { jwtVerify, SignJWT } from 'jose';
import { DAY_MS } from '../../time.ts';
import { dataAsOf, RATE_LIMIT_RETRY_AFTER_SECONDS } from './behaviours.ts';
import {
  ACCESS_EXPIRES_S, ACCOUNT_SUCCESS_LIMIT, ACCOUNT_WINDOW_MS, accountDetailsJson, accountLimit, accountMetadataJson, balancesJson, gcAccountId,
  gcBehaviourFor, gcCustomer, gcSyncOutcome, GC_INSTITUTIONS, institutionById, institutionJson, REFRESH_EXPIRES_S, SANDBOX_GC_SECRET_ID,
  SANDBOX_GC_SECRET_KEY, transactionsJson, type SandboxInstitution,
} from './gocardless-data.ts';
import { gcConsentPage, gcErrorPage } from './gocardless-page.ts';
import { gcSandboxStore, type GcAgreementRow, type GcRequisitionRow } from './gocardless-store.ts';
import { bearerToken, type SandboxBankDeps } from './http.ts';

export const GC_SANDBOX_PREFIX = '/sandbox/gocardless/api/v2';
const LINK_PREFIX = '/sandbox/gocardless/link';
const SCOPES = ['balances', 'details', 'transactions'] as const;

/** An answer in GoCardless's ErrorResponse shape. */
class GcError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Record<string, string>;
  constructor(status: number, summary: string, detail: string, opts: { type?: string; headers?: Record<string, string> } = {}) {
    super(summary);
    this.status = status;
    this.body = { summary, detail, ...(opts.type === undefined ? {} : { type: opts.type }), status_code: status };
    this.headers = opts.headers ?? {};
  }
}

const invalidToken = (): GcError => new GcError(401, 'Invalid token', 'Token is invalid or expired');
const notFound = (): GcError => new GcError(404, 'Not found.', 'Not found.');

const same = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
const TokenNew = Type.Object({ secret_id: Type.String(), secret_key: Type.String() });
const TokenRefresh = Type.Object({ refresh: Type.String() });
const AgreementBody = Type.Object({
  institution_id: Type.String({ minLength: 1 }),
  max_historical_days: Type.Optional(Type.Integer()),
  access_valid_for_days: Type.Optional(Type.Integer()),
  access_scope: Type.Optional(Type.Array(Type.String())),
  reconfirmation: Type.Optional(Type.Boolean()),
});
const RequisitionBody = Type.Object({
  redirect: Type.String({ minLength: 1, maxLength: 1024 }),
  institution_id: Type.String({ minLength: 1 }),
  agreement: Type.Optional(Type.String()),
  reference: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  user_language: Type.Optional(Type.String({ maxLength: 5 })),
  ssn: Type.Optional(Type.String()),
  account_selection: Type.Optional(Type.Boolean()),
  redirect_immediate: Type.Optional(Type.Boolean()),
});
const LinkForm = Type.Object({ username: Type.Optional(Type.String()), password: Type.Optional(Type.String()), decision: Type.Optional(Type.String()) });

const agreementJson = (a: GcAgreementRow) => ({
  id: a.id, created: a.createdAt.toISOString(), institution_id: a.institutionId, max_historical_days: a.maxHistoricalDays,
  access_valid_for_days: a.accessValidForDays, access_scope: a.accessScope, accepted: a.acceptedAt?.toISOString() ?? null, reconfirmation: false,
});

/** When the agreement's access ends (accepted + access_valid_for_days), or null before acceptance. */
const agreementEnd = (a: GcAgreementRow): Date | null => (a.acceptedAt === null ? null : new Date(a.acceptedAt.getTime() + a.accessValidForDays * DAY_MS));

export async function goCardlessRoutes(app: FastifyInstance, deps: SandboxBankDeps): Promise<void> {
  const store = gcSandboxStore(deps.db);
  const jwtKey = createHash('sha256').update(`gocardless-sandbox-jwt|${deps.sandboxClientSecret}`).digest();
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.setErrorHandler((err, req, reply) => {
    if (err instanceof GcError) return reply.status(err.status).headers(err.headers).send(err.body);
    const e = err as { validation?: unknown; statusCode?: unknown; message?: unknown };
    if (e.validation !== undefined || (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)) {
      const status = typeof e.statusCode === 'number' ? e.statusCode : 400;
      return reply.status(status).send({ summary: 'Invalid request', detail: String(e.message), status_code: status });
    }
    req.log.error({ err }, 'GoCardless sandbox failure');
    return reply.status(500).send({ summary: 'Internal error', detail: 'Something went wrong', status_code: 500 });
  });

  // Every GoCardless path ends with a slash; without one there is no such resource.
  r.addHook('onRequest', async (req) => {
    const path = (req.raw.url ?? '').split('?')[0] ?? '';
    if (!path.endsWith('/')) throw notFound();
  });

  const issue = async (kind: 'access' | 'refresh', via: 'new' | 'refresh', secretId: string): Promise<string> => {
    const jti = randomUUID();
    // Token lifetimes are real time, as GoCardless's are.
    const nowS = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ token_type: kind, sid: secretId }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setJti(jti).setIssuedAt(nowS).setExpirationTime(nowS + (kind === 'access' ? ACCESS_EXPIRES_S : REFRESH_EXPIRES_S)).sign(jwtKey);
    await store.recordToken({ jti, kind, via, secretId });
    return token;
  };

  const verify = async (token: string | null, kind: 'access' | 'refresh'): Promise<string> => {
    if (token === null) throw invalidToken();
    try {
      const { payload } = await jwtVerify(token, jwtKey, { algorithms: ['HS256'] });
      if (payload.token_type !== kind || typeof payload.sid !== 'string') throw invalidToken();
      return payload.sid;
    } catch {
      throw invalidToken();
    }
  };
  const authenticated = async (req: FastifyRequest): Promise<void> => {
    await verify(bearerToken(req), 'access');
  };

  r.post(`${GC_SANDBOX_PREFIX}/token/new/`, { schema: { body: TokenNew } }, async (req, reply) => {
    if (!same(req.body.secret_id, SANDBOX_GC_SECRET_ID) || !same(req.body.secret_key, SANDBOX_GC_SECRET_KEY)) {
      throw new GcError(401, 'Authentication failed', 'No active account found with the given credentials');
    }
    const access = await issue('access', 'new', req.body.secret_id);
    const refresh = await issue('refresh', 'new', req.body.secret_id);
    return reply.send({ access, access_expires: ACCESS_EXPIRES_S, refresh, refresh_expires: REFRESH_EXPIRES_S });
  });

  r.post(`${GC_SANDBOX_PREFIX}/token/refresh/`, { schema: { body: TokenRefresh } }, async (req, reply) => {
    const secretId = await verify(req.body.refresh, 'refresh');
    return reply.send({ access: await issue('access', 'refresh', secretId), access_expires: ACCESS_EXPIRES_S });
  });

  const institution = (id: string): SandboxInstitution => {
    const i = institutionById(id);
    if (i === undefined) throw new GcError(404, 'Not found.', `Institution ${id.slice(0, 100)} not found`);
    return i;
  };

  r.get(`${GC_SANDBOX_PREFIX}/institutions/`, { preHandler: authenticated }, async () => GC_INSTITUTIONS.map(institutionJson));
  r.get(`${GC_SANDBOX_PREFIX}/institutions/:id/`, { preHandler: authenticated, schema: { params: Id } }, async (req) => institutionJson(institution(req.params.id)));

  const createAgreement = async (b: { institution_id: string; max_historical_days?: number | undefined; access_valid_for_days?: number | undefined; access_scope?: string[] | undefined }): Promise<GcAgreementRow> => {
    const i = institutionById(b.institution_id);
    if (i === undefined) throw new GcError(400, 'Unknown Institution ID', `Get Institution IDs from /institutions/?country={$COUNTRY_CODE}`);
    const history = b.max_historical_days ?? 90;
    const access = b.access_valid_for_days ?? 90;
    const scope = b.access_scope ?? [...SCOPES];
    if (history < 1 || history > 730) throw new GcError(400, 'Incorrect max_historical_days', 'max_historical_days must be > 0 and <= 730');
    if (history > i.transactionTotalDays) {
      throw new GcError(400, 'Incorrect max_historical_days', `max_historical_days must be > 0 and <= ${i.transactionTotalDays} for ${i.id} (its transaction_total_days)`);
    }
    if (access < 1 || access > 180) throw new GcError(400, 'Incorrect access_valid_for_days', 'access_valid_for_days must be > 0 and <= 180');
    if (access > i.maxAccessValidForDays) {
      throw new GcError(400, 'Incorrect access_valid_for_days', `access_valid_for_days must be > 0 and <= ${i.maxAccessValidForDays} for ${i.id} (its max_access_valid_for_days)`);
    }
    if (scope.length === 0 || scope.some((s) => !(SCOPES as readonly string[]).includes(s)) || new Set(scope).size !== scope.length) {
      throw new GcError(400, 'Unknown value in access_scope', 'access_scope may contain only balances, details and transactions, each once');
    }
    return store.insertAgreement({ institutionId: i.id, maxHistoricalDays: history, accessValidForDays: access, accessScope: scope, createdAt: deps.clock.now() });
  };

  r.post(`${GC_SANDBOX_PREFIX}/agreements/enduser/`, { preHandler: authenticated, schema: { body: AgreementBody } }, async (req, reply) =>
    reply.status(201).send(agreementJson(await createAgreement(req.body))));

  r.get(`${GC_SANDBOX_PREFIX}/agreements/enduser/:id/`, { preHandler: authenticated, schema: { params: Id } }, async (req) => {
    const a = await store.agreement(req.params.id);
    if (a === null) throw notFound();
    return agreementJson(a);
  });

  /** The requisition's status now: a linked one whose agreement has run out is EX. */
  const currentStatus = async (q: GcRequisitionRow): Promise<{ q: GcRequisitionRow; agreement: GcAgreementRow | null }> => {
    const agreement = await store.agreement(q.agreementId);
    const end = agreement === null ? null : agreementEnd(agreement);
    if (q.status === 'LN' && end !== null && end.getTime() <= deps.clock.now().getTime()) {
      await store.setStatus(q.id, ['LN'], 'EX');
      return { q: { ...q, status: 'EX' }, agreement };
    }
    return { q, agreement };
  };

  const linkUrl = (req: FastifyRequest, id: string): string => `${req.protocol}://${req.host}${LINK_PREFIX}/${id}/`;
  const requisitionJson = async (req: FastifyRequest, q: GcRequisitionRow) => ({
    id: q.id, created: q.createdAt.toISOString(), redirect: q.redirect, status: q.status, institution_id: q.institutionId, agreement: q.agreementId,
    reference: q.reference, accounts: q.status === 'LN' || q.status === 'EX' || q.status === 'SU' ? await store.accountIdsOf(q.id) : [],
    user_language: q.userLanguage ?? 'EN', link: linkUrl(req, q.id), ssn: null, account_selection: false, redirect_immediate: false,
  });

  r.post(`${GC_SANDBOX_PREFIX}/requisitions/`, { preHandler: authenticated, schema: { body: RequisitionBody } }, async (req, reply) => {
    const b = req.body;
    if (!/^https?:\/\//i.test(b.redirect)) throw new GcError(400, 'Invalid redirect', 'redirect must be an http(s) URL');
    let agreementId = b.agreement;
    if (agreementId === undefined) {
      agreementId = (await createAgreement({ institution_id: b.institution_id })).id;
    } else {
      const a = await store.agreement(agreementId);
      if (a === null) throw new GcError(400, 'Invalid agreement', `End User Agreement ${agreementId.slice(0, 100)} not found`);
      if (a.institutionId !== b.institution_id) throw new GcError(400, 'Incorrect Institution ID', 'the agreement was made for a different institution');
    }
    institution(b.institution_id);
    const q = await store.insertRequisition({
      institutionId: b.institution_id, agreementId, redirect: b.redirect, reference: b.reference ?? null, userLanguage: b.user_language ?? null, createdAt: deps.clock.now(),
    });
    return reply.status(201).send(await requisitionJson(req, q));
  });

  r.get(`${GC_SANDBOX_PREFIX}/requisitions/:id/`, { preHandler: authenticated, schema: { params: Id } }, async (req) => {
    const found = await store.requisition(req.params.id);
    if (found === null) throw notFound();
    return requisitionJson(req, (await currentStatus(found)).q);
  });

  r.delete(`${GC_SANDBOX_PREFIX}/requisitions/:id/`, { preHandler: authenticated, schema: { params: Id } }, async (req) => {
    if (!(await store.deleteRequisition(req.params.id))) throw notFound();
    return { summary: 'Requisition deleted', detail: `Requisition '${req.params.id}' deleted with all its End User Agreements` };
  });

  await accountRoutes(app, deps, store, authenticated, currentStatus);
  await linkRoutes(app, deps, store);
}

/** GoCardless's API-level limit headers (documented names; the sandbox does not enforce the per-minute limit). */
const API_LIMIT_HEADERS = { HTTP_X_RATELIMIT_LIMIT: '100', HTTP_X_RATELIMIT_REMAINING: '99', HTTP_X_RATELIMIT_RESET: '60' };
const accountHeaders = (remaining: number, resetSeconds: number): Record<string, string> => ({
  ...API_LIMIT_HEADERS,
  HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_LIMIT: String(ACCOUNT_SUCCESS_LIMIT),
  HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING: String(remaining),
  HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET: String(resetSeconds),
});

const SCOPE_SUMMARY: Record<string, string> = { details: 'account details', balances: 'balances', transactions: 'transactions' };

async function accountRoutes(
  app: FastifyInstance, deps: SandboxBankDeps, store: ReturnType<typeof gcSandboxStore>, authenticated: (req: FastifyRequest) => Promise<void>,
  currentStatus: (q: GcRequisitionRow) => Promise<{ q: GcRequisitionRow; agreement: GcAgreementRow | null }>,
): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const Q = Type.Object({ date_from: Type.Optional(Type.String({ format: 'date' })), date_to: Type.Optional(Type.String({ format: 'date' })) });

  /** The account, its requisition as it stands now, and its customer; 404 for an unknown account. */
  const load = async (id: string) => {
    const found = await store.account(id);
    if (found === null) throw new GcError(404, 'Account ID not found', `Account ID ${id.slice(0, 100)} not found`);
    const { q, agreement } = await currentStatus(found.requisition);
    const institution = institutionById(q.institutionId);
    if (agreement === null || institution === undefined || q.username === null || q.linkedAt === null) throw new GcError(404, 'Account ID not found', 'Account ID not found');
    return { q, agreement, institution, position: found.position, customer: gcCustomer(q.institutionId, q.username) };
  };

  const statusOf = (q: GcRequisitionRow): string => (q.status === 'EX' ? 'EXPIRED' : q.status === 'SU' ? 'SUSPENDED' : 'READY');

  r.get(`${GC_SANDBOX_PREFIX}/accounts/:id/`, { preHandler: authenticated, schema: { params: Id } }, async (req, reply) => {
    const a = await load(req.params.id);
    // The first account's metadata call opens a sync (the bank's count of syncs, for the behaviours).
    if (a.position === 0 && a.q.status === 'LN') await store.countSync(a.q.id);
    return reply.headers(API_LIMIT_HEADERS).send(accountMetadataJson(req.params.id, a.customer, a.position, a.institution, statusOf(a.q), a.q.linkedAt ?? a.q.createdAt, deps.clock.now()));
  });

  const data = (scope: 'details' | 'balances' | 'transactions') =>
    r.get(`${GC_SANDBOX_PREFIX}/accounts/:id/${scope}/`, { preHandler: authenticated, schema: { params: Id, querystring: Q } }, async (req, reply) => {
      const now = deps.clock.now();
      const a = await load(req.params.id);
      const calls = await store.callsSince(req.params.id, scope, new Date(now.getTime() - ACCOUNT_WINDOW_MS));
      const before = accountLimit(calls, now);
      const fail = (status: number, summary: string, detail: string, type: string, remaining = before.remaining, reset = before.resetSeconds): GcError =>
        new GcError(status, summary, detail, { type, headers: accountHeaders(remaining, reset) });
      const end = agreementEnd(a.agreement);
      if (a.q.status === 'EX' && end !== null) {
        throw new GcError(401, `End User Agreement (EUA) ${a.agreement.id} has expired`,
          `EUA was valid for ${a.agreement.accessValidForDays} days and it expired at ${end.toISOString()}. The end user must connect the account once more with new EUA and Requisition`);
      }
      if (a.q.status === 'SU') throw fail(409, 'Account suspended', 'This account or its requisition was suspended due to numerous errors that occurred while accessing it.', 'AccountSuspendedError');
      if (!a.agreement.accessScope.includes(scope)) throw fail(403, `Access to ${SCOPE_SUMMARY[scope] ?? scope} is not allowed`, 'The End User Agreement does not include this access scope', 'AccessScopeError');
      const outcome = gcSyncOutcome(a.q.behaviour, a.q.fetchCount);
      const couldNot = `Couldn't update ${SCOPE_SUMMARY[scope] ?? scope}`;
      switch (outcome) {
        case 'revoked':
          throw fail(401, couldNot, 'Access has expired or it has been revoked', 'AccessExpiredError');
        case 'suspended':
          await store.setStatus(a.q.id, ['LN'], 'SU');
          throw fail(409, 'Account suspended', 'This account or its requisition was suspended due to numerous errors that occurred while accessing it.', 'AccountSuspendedError');
        case 'provider_error':
          throw fail(500, couldNot, 'Request to Institution returned an error', 'UnknownRequestError');
        case 'outage':
          throw fail(503, couldNot, 'Institution service unavailable', 'ServiceError');
        case 'rate_limited':
          throw fail(429, couldNot, 'Daily request limit set by the Institution has been exceeded.', 'RateLimitError', 0, RATE_LIMIT_RETRY_AFTER_SECONDS);
        case 'partial':
          if (scope === 'transactions' && a.position === 1) throw fail(500, couldNot, 'Request to Institution returned an error', 'UnknownRequestError');
          break;
        case 'ok':
          break;
      }
      if (before.remaining === 0) throw fail(429, couldNot, 'Daily request limit set by the Institution has been exceeded.', 'RateLimitError');
      await store.recordCall(req.params.id, scope, now);
      const after = accountLimit([...calls, now], now);
      void reply.headers(accountHeaders(after.remaining, after.resetSeconds));
      const asOf = dataAsOf(a.q.behaviour, a.q.linkedAt ?? now, now);
      if (scope === 'details') return accountDetailsJson(a.customer, a.position, a.institution);
      if (scope === 'balances') return balancesJson(a.customer, a.position, asOf);
      const earliest = new Date(now.getTime() - a.agreement.maxHistoricalDays * DAY_MS);
      const from = req.query.date_from === undefined ? earliest : new Date(Math.max(Date.parse(`${req.query.date_from}T00:00:00Z`), earliest.getTime()));
      const to = req.query.date_to === undefined ? null : new Date(Date.parse(`${req.query.date_to}T23:59:59.999Z`));
      return transactionsJson(a.customer, a.position, { linkedAt: a.q.linkedAt ?? now, asOf, from, to, now });
    });
  for (const scope of ['details', 'balances', 'transactions'] as const) data(scope);
}

const html = (reply: FastifyReply): FastifyReply => reply.type('text/html; charset=utf-8');

async function linkRoutes(app: FastifyInstance, deps: SandboxBankDeps, store: ReturnType<typeof gcSandboxStore>): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const page = async (id: string) => {
    const q = await store.requisition(id);
    const agreement = q === null ? null : await store.agreement(q.agreementId);
    const institution = q === null ? undefined : institutionById(q.institutionId);
    if (q === null || agreement === null || institution === undefined) return null;
    return { q, agreement, institution };
  };
  const back = (q: GcRequisitionRow, extra: Record<string, string> = {}): string => {
    const url = new URL(q.redirect);
    url.searchParams.set('ref', q.reference ?? q.id);
    for (const [k, v] of Object.entries(extra)) url.searchParams.set(k, v);
    return url.toString();
  };
  const reused = (reply: FastifyReply): FastifyReply =>
    html(reply).status(400).send(gcErrorPage('This link has already been used', 'RequisitionLinkReused: this link has already been used. Go back to the application and start again.'));

  r.get(`${LINK_PREFIX}/:id/`, { schema: { params: Id } }, async (req, reply) => {
    const p = await page(req.params.id);
    if (p === null) return html(reply).status(404).send(gcErrorPage('Not found', 'This link does not exist.'));
    if (!(await store.setStatus(p.q.id, ['CR', 'GC'], 'GC'))) return reused(reply);
    return html(reply).send(gcConsentPage({
      institutionName: p.institution.name, action: `${LINK_PREFIX}/${p.q.id}/`, accessScope: p.agreement.accessScope,
      accessValidForDays: p.agreement.accessValidForDays, maxHistoricalDays: p.agreement.maxHistoricalDays,
    }));
  });

  r.post(`${LINK_PREFIX}/:id/`, { schema: { params: Id, body: LinkForm } }, async (req, reply) => {
    const p = await page(req.params.id);
    if (p === null) return html(reply).status(404).send(gcErrorPage('Not found', 'This link does not exist.'));
    if (p.q.status !== 'GC') return reused(reply);
    if (req.body.decision === 'cancel') return reply.redirect(back(p.q, { error: 'UserCancelledSession', details: 'User cancelled the session.' }), 303);
    const username = (req.body.username ?? '').trim();
    if (username === '') {
      return html(reply).status(400).send(gcConsentPage({
        institutionName: p.institution.name, action: `${LINK_PREFIX}/${p.q.id}/`, accessScope: p.agreement.accessScope,
        accessValidForDays: p.agreement.accessValidForDays, maxHistoricalDays: p.agreement.maxHistoricalDays, error: 'Enter your username.',
      }));
    }
    const behaviour = gcBehaviourFor(username);
    await store.setStatus(p.q.id, ['GC'], 'UA');
    if (behaviour === 'user_rejected') {
      await store.setStatus(p.q.id, ['UA'], 'RJ');
      return reply.redirect(back(p.q), 303);
    }
    if (behaviour === 'user_unfinished') return reply.redirect(back(p.q), 303);
    const accountIds = [0, 1].map((position) => gcAccountId(p.q.id, position));
    if (!(await store.link(p.q.id, { username, behaviour, now: deps.clock.now(), accountIds }))) return reused(reply);
    return reply.redirect(back(p.q), 303);
  });
}
