/**
 * The GoCardless sandbox counterpart's account endpoints: metadata (with the account's status),
 * details, balances and transactions, each data scope limited to 4 successful calls a day per
 * account with GoCardless's rate-limit headers; the agreement's expiry, suspension and the
 * sandbox usernames' failures answered in GoCardless's error bodies.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { DAY_MS } from '../../time.ts';
import { dataAsOf, RATE_LIMIT_RETRY_AFTER_SECONDS } from './behaviours.ts';
import {
  ACCOUNT_SUCCESS_LIMIT, ACCOUNT_WINDOW_MS, accountDetailsJson, accountLimit, accountMetadataJson, balancesJson, gcCustomer, gcSyncOutcome,
  institutionById, transactionsJson,
} from './gocardless-data.ts';
import { agreementEnd, GC_SANDBOX_PREFIX, GcError, Id } from './gocardless-http.ts';
import type { gcSandboxStore, GcAgreementRow, GcRequisitionRow } from './gocardless-store.ts';
import type { SandboxBankDeps } from './http.ts';

/** The detail of a 401 for an agreement the institution ended before its term (`user_expired`). */
const EARLY_EXPIRY_DETAIL = "The institution ended access before the EUA's term. The end user must connect the account once more with new EUA and Requisition";

/** GoCardless's API-level limit headers (documented names; the sandbox does not enforce the per-minute limit). */
const API_LIMIT_HEADERS = { HTTP_X_RATELIMIT_LIMIT: '100', HTTP_X_RATELIMIT_REMAINING: '99', HTTP_X_RATELIMIT_RESET: '60' };
const accountHeaders = (remaining: number, resetSeconds: number): Record<string, string> => ({
  ...API_LIMIT_HEADERS,
  HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_LIMIT: String(ACCOUNT_SUCCESS_LIMIT),
  HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING: String(remaining),
  HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET: String(resetSeconds),
});

const SCOPE_SUMMARY: Record<string, string> = { details: 'account details', balances: 'balances', transactions: 'transactions' };

export async function accountRoutes(
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
        throw new GcError(401, `End User Agreement (EUA) ${a.agreement.id} has expired`, end.getTime() <= now.getTime()
          ? `EUA was valid for ${a.agreement.accessValidForDays} days and it expired at ${end.toISOString()}. The end user must connect the account once more with new EUA and Requisition`
          : EARLY_EXPIRY_DETAIL);
      }
      if (a.q.status === 'SU') throw fail(409, 'Account suspended', 'This account or its requisition was suspended due to numerous errors that occurred while accessing it.', 'AccountSuspendedError');
      if (!a.agreement.accessScope.includes(scope)) throw fail(403, `Access to ${SCOPE_SUMMARY[scope] ?? scope} is not allowed`, 'The End User Agreement does not include this access scope', 'AccessScopeError');
      const outcome = gcSyncOutcome(a.q.behaviour, a.q.fetchCount);
      const couldNot = `Couldn't update ${SCOPE_SUMMARY[scope] ?? scope}`;
      switch (outcome) {
        case 'revoked':
          throw fail(401, couldNot, 'Access has expired or it has been revoked', 'AccessExpiredError');
        case 'expired':
          // The institution ended access before the agreement's term: the requisition is EX from now on.
          await store.setStatus(a.q.id, ['LN'], 'EX');
          throw new GcError(401, `End User Agreement (EUA) ${a.agreement.id} has expired`, EARLY_EXPIRY_DETAIL);
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
