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
 * suspension (409, SU, SUSPENDED); DELETE of a requisition. Token lifetimes are real time. The
 * account endpoints are in gocardless-accounts.ts, the consent page in gocardless-link.ts.
 */
import { createHash, randomUUID } from 'node:crypto';
import { sameSecret } from '../../crypto/compare.ts';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { jwtVerify, SignJWT } from 'jose';
import { accountRoutes } from './gocardless-accounts.ts';
import {
  ACCESS_EXPIRES_S, GC_INSTITUTIONS, institutionById, institutionJson, REFRESH_EXPIRES_S, SANDBOX_GC_SECRET_ID, SANDBOX_GC_SECRET_KEY,
  type SandboxInstitution,
} from './gocardless-data.ts';
import { agreementEnd, GC_SANDBOX_PREFIX, GcError, Id, invalidToken, LINK_PREFIX, notFound } from './gocardless-http.ts';
import { linkRoutes } from './gocardless-link.ts';
import { gcSandboxStore, type GcAgreementRow, type GcRequisitionRow } from './gocardless-store.ts';
import { bearerToken, type SandboxBankDeps } from './http.ts';

export { GC_SANDBOX_PREFIX } from './gocardless-http.ts';

const SCOPES = ['balances', 'details', 'transactions'] as const;


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
const agreementJson = (a: GcAgreementRow) => ({
  id: a.id, created: a.createdAt.toISOString(), institution_id: a.institutionId, max_historical_days: a.maxHistoricalDays,
  access_valid_for_days: a.accessValidForDays, access_scope: a.accessScope, accepted: a.acceptedAt?.toISOString() ?? null, reconfirmation: false,
});

/** Whether `url` is an http(s) URL of `publicUrl`'s origin. */
function sameOrigin(url: string, publicUrl: string): boolean {
  try {
    const u = new URL(url);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === new URL(publicUrl).origin;
  } catch {
    return false;
  }
}

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
    if (!sameSecret(req.body.secret_id, SANDBOX_GC_SECRET_ID) || !sameSecret(req.body.secret_key, SANDBOX_GC_SECRET_KEY)) {
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
    if (!sameOrigin(b.redirect, deps.publicUrl)) throw new GcError(400, 'Invalid redirect', `redirect must be an address of ${new URL(deps.publicUrl).origin}`);
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

