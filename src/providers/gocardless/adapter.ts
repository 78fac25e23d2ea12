/**
 * GoCardless Bank Account Data, API v2 (SPEC §10), for operators who already hold an account.
 *
 * Journey: the shared token pair (tokens.ts) → `GET /institutions/{id}/` (its limits, as strings)
 * → `POST /agreements/enduser/` (history capped by the institution's transaction_total_days,
 * access days = the consent asked for, capped by its max_access_valid_for_days) → `POST
 * /requisitions/` (redirect = Mooring's fixed callback, reference = the journey's state) → the
 * requisition's link → back to the callback with `?ref=` → `GET /requisitions/{id}/` (its status
 * decides) and `GET /agreements/enduser/{id}/` (accepted + access_valid_for_days = expiresAt).
 * Syncs: per account, metadata, details, balances and transactions (every path ends with `/`);
 * the per-account daily limit GoCardless reports in its rate-limit headers is passed up as
 * FetchResult.upstreamBudget. A refused call is explained by the requisition's own status.
 * Every failure leaves through toProviderError (../http.ts) with classifierFor (mapping.ts).
 */
import type { SecretBox } from '../../crypto/secrets.ts';
import type { Queryable } from '../../db/db.ts';
import type { CatalogEntry } from '../catalog.ts';
import {
  atEdge, CallbackFailure, callProvider, checkShape, HttpStatusFailure, rateLimitHeader, RateLimitStop, ResponseShapeFailure, toProviderError, type HttpCall,
} from '../http.ts';
import { ProviderError, type FetchResult, type JsonObject, type ProviderAccount, type ProviderAdapter, type ProviderTransaction } from '../provider.ts';
import { GC_MAX_HISTORICAL_DAYS, type GoCardlessSettings } from '../settings.ts';
import {
  accountProblem, callbackProblem, classifierFor, isInvalidToken, requisitionProblem, toProviderAccount, toProviderTransactions,
} from './mapping.ts';
import {
  AccountDetails, AccountMetadata, Agreement, Balances, GcGrant, GcPending, Institution, Requisition, Transactions,
  type GcAccountDetails, type GcBalance, type GcTransaction,
} from './schemas.ts';
import { goCardlessTokens } from './tokens.ts';
import { mapLimit } from '../map-limit.ts';

export interface GoCardlessAdapterOptions {
  timeoutMs: number;
  /** The database and key that share the token pair between processes (absent: this process only). */
  db?: Queryable;
  secrets?: SecretBox;
  /** Real time, for token lifetimes (GoCardless's, not the domain clock). */
  realNow?: () => number;
}

const DAY_MS = 86_400_000;
/** GoCardless's documented default when an institution does not say (GC-SPEC). */
const DEFAULT_INSTITUTION_DAYS = 90;
/** GoCardless's own maximum for access_valid_for_days (GC-SPEC EndUserAgreementRequest). */
export const GC_MAX_ACCESS_DAYS = 180;
const ACCOUNT_CONCURRENCY = 4;

export function settingsOf(provider: CatalogEntry): GoCardlessSettings {
  if (provider.gocardless === undefined) throw new ProviderError('unavailable', `${provider.name} has no GoCardless settings`);
  return provider.gocardless;
}

/** An institution's limit (GoCardless sends these numbers as strings); the documented default when absent. */
export const institutionDays = (v: string | number | undefined): number => {
  const n = typeof v === 'number' ? v : v === undefined ? Number.NaN : Number.parseInt(v, 10);
  return Number.isInteger(n) && n > 0 ? n : DEFAULT_INSTITUTION_DAYS;
};

/**
 * The agreement's terms: days of access = the consent asked for (an expiry date, else the
 * provider's consentDays, else the institution's maximum), capped by the institution and by
 * GoCardless; days of history = maxHistoricalDays capped by the institution's transaction_total_days.
 */
export function agreementTerms(
  s: GoCardlessSettings, consentDays: number | null, consentExpiresAt: Date | null, now: Date | undefined,
  institution: { maxAccessDays: number; transactionTotalDays: number },
): { accessValidForDays: number; maxHistoricalDays: number } {
  const maxAccess = Math.min(institution.maxAccessDays, GC_MAX_ACCESS_DAYS);
  const asked = consentExpiresAt !== null && now !== undefined
    ? Math.ceil((consentExpiresAt.getTime() - now.getTime()) / DAY_MS)
    : (consentDays ?? maxAccess);
  return {
    accessValidForDays: Math.max(1, Math.min(asked, maxAccess)),
    maxHistoricalDays: Math.max(1, Math.min(s.maxHistoricalDays, institution.transactionTotalDays, GC_MAX_HISTORICAL_DAYS)),
  };
}

/** The fewest per-account successful calls left among the answers seen, and when that window resets. */
class AccountLimitTracker {
  private best: { remaining: number; resetsInMs: number } | undefined;
  see(headers: Headers): void {
    const remaining = Number.parseInt(rateLimitHeader(headers, 'x-ratelimit-account-success-remaining') ?? '', 10);
    const reset = Number.parseInt(rateLimitHeader(headers, 'x-ratelimit-account-success-reset') ?? '', 10);
    if (!Number.isInteger(remaining) || !Number.isInteger(reset) || remaining < 0 || reset < 0) return;
    const resetsInMs = Math.min(reset * 1000, 31 * DAY_MS);
    if (this.best === undefined || remaining < this.best.remaining || (remaining === this.best.remaining && resetsInMs > this.best.resetsInMs)) {
      this.best = { remaining, resetsInMs };
    }
  }
  get(): { remaining: number; resetsInMs: number } | undefined {
    return this.best;
  }
}

export function createGoCardlessAdapter(opts: GoCardlessAdapterOptions): ProviderAdapter {
  const realNow = opts.realNow ?? Date.now;
  const tokens = goCardlessTokens({ timeoutMs: opts.timeoutMs, realNow, ...(opts.db !== undefined ? { db: opts.db } : {}), ...(opts.secrets !== undefined ? { secrets: opts.secrets } : {}) });

  /** One authenticated call; a 401 "Invalid token" renews the pair and tries once more. */
  async function call(provider: CatalogEntry, c: Omit<HttpCall, 'timeoutMs' | 'headers' | 'url'> & { path: string; query?: Record<string, string> }): Promise<unknown> {
    const s = settingsOf(provider);
    const url = new URL(`${s.apiUrl}${c.path}`);
    for (const [k, v] of Object.entries(c.query ?? {})) url.searchParams.set(k, v);
    const attempt = async (): Promise<{ token: string; run: Promise<unknown> }> => {
      c.stop?.check(); // nothing, not even a token renewal, once this fetch met a rate limit
      const token = await tokens.access(provider, s);
      const { path: _path, query: _query, ...rest } = c;
      return { token, run: callProvider({ ...rest, url: url.toString(), headers: { authorization: `Bearer ${token}` }, timeoutMs: opts.timeoutMs }) };
    };
    const first = await attempt();
    try {
      return await first.run;
    } catch (err) {
      if (!(err instanceof HttpStatusFailure && isInvalidToken(err.status, err.body))) throw err;
      await tokens.refused(provider, first.token);
      return (await attempt()).run;
    }
  }

  const readGrant = (provider: CatalogEntry, grant: JsonObject): GcGrant => {
    if (!GcGrant.Check(grant)) throw new ProviderError('credentials', `The stored authorisation for ${provider.name} is unusable; the user must authorise again`);
    return grant;
  };

  async function readRequisition(provider: CatalogEntry, id: string) {
    return checkShape(Requisition, await call(provider, { method: 'GET', path: `/requisitions/${encodeURIComponent(id)}/`, endpoint: '/requisitions/{requisitionId}/' }), 'the requisition');
  }

  async function deleteRequisition(provider: CatalogEntry, id: string): Promise<void> {
    try {
      await call(provider, { method: 'DELETE', path: `/requisitions/${encodeURIComponent(id)}/`, endpoint: '/requisitions/{requisitionId}/' });
    } catch (err) {
      if (err instanceof HttpStatusFailure && (err.status === 404 || err.status === 410)) return; // already gone
      throw err;
    }
  }

  /**
   * A refused sync call explained by the requisition's own status (EX, SU, …); the original failure
   * when that says nothing. An expired agreement is dated by the agreement's own end when that has
   * passed (acceptance + access_valid_for_days), else by the sync (the bank ended it early).
   */
  async function explainRefusal(provider: CatalogEntry, grant: GcGrant, now: Date, err: unknown): Promise<unknown> {
    const refused = toProviderError(err, provider.name, classifierFor(provider.name));
    if (refused.kind !== 'credentials' && refused.kind !== 'consent_expired') return err;
    const dated = (e: ProviderError): ProviderError => {
      if (e.kind !== 'consent_expired') return e;
      const accepted = grant.acceptedAt === null ? Number.NaN : Date.parse(grant.acceptedAt);
      const end = accepted + grant.accessValidForDays * DAY_MS;
      return new ProviderError('consent_expired', e.safeDetail, { cause: err, ...(Number.isNaN(end) || end > now.getTime() ? {} : { expiredAt: new Date(end) }) });
    };
    try {
      const r = await readRequisition(provider, grant.requisitionId);
      const problem = requisitionProblem(provider.name, r.status);
      if (problem === undefined) return refused.kind === 'consent_expired' ? dated(refused) : err;
      // In a sync every non-linked state means the user must authorise again.
      return problem.kind === 'credentials' || problem.kind === 'consent_expired' ? dated(problem) : new ProviderError('credentials', problem.safeDetail);
    } catch {
      return refused.kind === 'consent_expired' ? dated(refused) : err;
    }
  }

  return {
    startAuthorisation: (input) =>
      atEdge(input.provider.name, classifierFor(input.provider.name), async () => {
        const { provider } = input;
        const s = settingsOf(provider);
        const institution = checkShape(Institution, await call(provider, {
          method: 'GET', path: `/institutions/${encodeURIComponent(s.institutionId)}/`, endpoint: '/institutions/{institutionId}/',
        }), 'the institution');
        const terms = agreementTerms(s, provider.consentDays, input.consentExpiresAt, input.now, {
          maxAccessDays: institutionDays(institution.max_access_valid_for_days),
          transactionTotalDays: institutionDays(institution.transaction_total_days),
        });
        const agreement = checkShape(Agreement, await call(provider, {
          method: 'POST', path: '/agreements/enduser/', endpoint: '/agreements/enduser/',
          json: {
            institution_id: s.institutionId, max_historical_days: terms.maxHistoricalDays,
            access_valid_for_days: terms.accessValidForDays, access_scope: s.accessScope,
          },
        }), 'the end-user agreement');
        const requisition = checkShape(Requisition, await call(provider, {
          method: 'POST', path: '/requisitions/', endpoint: '/requisitions/',
          json: { redirect: input.callbackUrl, institution_id: s.institutionId, agreement: agreement.id, reference: input.state, user_language: 'EN' },
        }), 'the requisition');
        if (requisition.link === undefined || !/^https?:\/\//.test(requisition.link)) throw new ResponseShapeFailure('the requisition has no link');
        const previous = input.existingGrant !== undefined && GcGrant.Check(input.existingGrant) ? input.existingGrant.requisitionId : undefined;
        const pending: GcPending = {
          requisitionId: requisition.id, agreementId: agreement.id, reference: input.state, ...(previous === undefined ? {} : { previousRequisitionId: previous }),
        };
        return { kind: 'redirect', url: requisition.link, pending };
      }),

    completeAuthorisation: (input) =>
      atEdge(input.provider.name, classifierFor(input.provider.name), async () => {
        const { provider } = input;
        if (!GcPending.Check(input.pending)) throw new ResponseShapeFailure('the pending journey state is unreadable');
        const pending = input.pending;
        if (input.input.ref !== pending.reference) throw new CallbackFailure('the callback reference does not match this journey');
        if (input.input.error !== undefined && input.input.error !== '') {
          // The requisition is of no further use; withdrawing it is good manners, not essential.
          await deleteRequisition(provider, pending.requisitionId).catch(() => undefined);
          throw callbackProblem(provider.name, input.input.error);
        }
        const requisition = await readRequisition(provider, pending.requisitionId);
        const problem = requisitionProblem(provider.name, requisition.status);
        if (problem !== undefined) throw problem;
        if (requisition.accounts.length === 0) throw new ProviderError('journey_rejected', `No accounts were shared at ${provider.name}`);
        const agreement = checkShape(Agreement, await call(provider, {
          method: 'GET', path: `/agreements/enduser/${encodeURIComponent(pending.agreementId)}/`, endpoint: '/agreements/enduser/{agreementId}/',
        }), 'the end-user agreement');
        const acceptedMs = agreement.accepted === null ? Number.NaN : Date.parse(agreement.accepted);
        if (pending.previousRequisitionId !== undefined && pending.previousRequisitionId !== pending.requisitionId) {
          // A reauth replaced the old requisition (and its agreement).
          await deleteRequisition(provider, pending.previousRequisitionId).catch(() => undefined);
        }
        const grant: GcGrant = {
          requisitionId: requisition.id, agreementId: agreement.id, accountIds: requisition.accounts,
          acceptedAt: Number.isNaN(acceptedMs) ? null : new Date(acceptedMs).toISOString(), accessValidForDays: agreement.access_valid_for_days,
        };
        return {
          kind: 'done', grant, ref: requisition.id,
          ...(Number.isNaN(acceptedMs) ? {} : { expiresAt: new Date(acceptedMs + agreement.access_valid_for_days * DAY_MS) }),
        };
      }),

    fetch: (input) =>
      atEdge(input.provider.name, classifierFor(input.provider.name), async (): Promise<FetchResult> => {
        const { provider } = input;
        const s = settingsOf(provider);
        const grant = readGrant(provider, input.grant);
        const limits = new AccountLimitTracker();
        // GoCardless's first 429 stops every later call of this fetch, every account's (SPEC §10).
        const stop = new RateLimitStop(provider.name, classifierFor(provider.name));
        const scoped = (scope: 'details' | 'balances' | 'transactions'): boolean => s.accessScope.includes(scope);
        const accountCall = (id: string, sub: '' | 'details/' | 'balances/' | 'transactions/', query?: Record<string, string>): Promise<unknown> =>
          call(provider, {
            method: 'GET', path: `/accounts/${encodeURIComponent(id)}/${sub}`, endpoint: `/accounts/{accountId}/${sub}`,
            ...(query === undefined ? {} : { query }), onHeaders: (h) => limits.see(h), stop,
          });

        const readAccount = async (id: string): Promise<{ account: ProviderAccount; transactions: Promise<ProviderTransaction[]> }> => {
          const meta = checkShape(AccountMetadata, await accountCall(id, ''), 'the account');
          const problem = accountProblem(provider.name, meta.status);
          if (problem !== undefined) throw problem;
          let details: GcAccountDetails | undefined;
          if (scoped('details')) details = checkShape(AccountDetails, await accountCall(id, 'details/'), 'the account details').account;
          let balances: GcBalance[] | undefined;
          if (scoped('balances')) balances = checkShape(Balances, await accountCall(id, 'balances/'), 'the balances').balances;
          const account = toProviderAccount(meta, details, balances, 'GBP', input.now);
          const transactions = (async (): Promise<ProviderTransaction[]> => {
            if (!scoped('transactions')) return [];
            const query = input.since === null ? undefined : { date_from: input.since.toISOString().slice(0, 10) };
            const body = checkShape(Transactions, await accountCall(id, 'transactions/', query), 'the transactions');
            const pending: GcTransaction[] = body.transactions.pending ?? [];
            return toProviderTransactions(account.providerAccountId, body.transactions.booked, pending, input.now);
          })();
          // Handled below (allSettled); a rejection here must not go unobserved meanwhile.
          transactions.catch(() => undefined);
          return { account, transactions };
        };

        try {
          const results = await mapLimit(grant.accountIds, ACCOUNT_CONCURRENCY, async (id) => {
            try {
              const r = await readAccount(id);
              const [t] = await Promise.allSettled([r.transactions]);
              return { id, account: { status: 'fulfilled' as const, value: r.account }, transactions: t };
            } catch (reason) {
              return { id, account: { status: 'rejected' as const, reason }, transactions: undefined };
            }
          });
          // A rate limit ends the sync as rate-limited, whatever else failed after it; a refusal of the
          // whole connection on any call fails the sync; anything else loses only that part.
          if (stop.tripped !== undefined) throw stop.tripped.failure;
          for (const r of results) {
            for (const st of [r.account, r.transactions]) {
              if (st === undefined || st.status !== 'rejected') continue;
              const e = toProviderError(st.reason, provider.name, classifierFor(provider.name));
              if (e.kind === 'credentials' || e.kind === 'consent_expired' || e.kind === 'rate_limited') throw st.reason;
            }
          }
          const accounts: ProviderAccount[] = [];
          const transactions: ProviderTransaction[] = [];
          const missing: string[] = [];
          for (const r of results) {
            if (r.account.status === 'rejected') {
              missing.push('the data of an account');
              continue;
            }
            accounts.push(r.account.value);
            if (r.transactions?.status === 'rejected') missing.push(`the transactions of ${r.account.value.accountName}`);
            else if (r.transactions?.status === 'fulfilled') transactions.push(...r.transactions.value);
          }
          if (grant.accountIds.length > 0 && accounts.length === 0) {
            const first = results.find((r) => r.account.status === 'rejected')?.account;
            throw first?.status === 'rejected' ? first.reason : new ResponseShapeFailure('no account data');
          }
          const asOfs = accounts.map((a) => a.balanceDate.getTime()).filter((t) => t < input.now.getTime());
          const upstreamBudget = limits.get();
          return {
            grant,
            asOf: asOfs.length === 0 ? null : new Date(Math.min(...asOfs)),
            accounts,
            transactions,
            partial: missing.length > 0,
            ...(missing.length > 0 ? { partialDetail: `${provider.name} could not provide ${missing.join(', ')}` } : {}),
            ...(upstreamBudget === undefined ? {} : { upstreamBudget }),
          };
        } catch (err) {
          throw await explainRefusal(provider, grant, input.now, err);
        }
      }),

    revoke: (provider, grant) =>
      atEdge(provider.name, classifierFor(provider.name), async () => {
        await deleteRequisition(provider, readGrant(provider, grant).requisitionId);
      }),
  };
}
