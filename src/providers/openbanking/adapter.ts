/**
 * Mooring's Open Banking AIS client (UK OB Read/Write API v3.1), written against the standard so it
 * can be pointed at a real bank: client-credentials token, account-access consent, redirect to the
 * bank's authorise page, code exchange, then accounts, balances and transactions with refreshable
 * tokens. Every failure leaves through toProviderError (../http.ts) with classifyOb below.
 */
import { randomUUID } from 'node:crypto';
import type { CatalogEntry } from '../catalog.ts';
import {
  atEdge, callProvider, checkShape, HttpStatusFailure, providerDate, ResponseShapeFailure, toProviderError, type FailureClassifier,
} from '../http.ts';
import { ProviderError, type FetchResult, type JsonObject, type ProviderAccount, type ProviderAdapter, type ProviderTransaction } from '../provider.ts';
import { toProviderAccount, toProviderTransactions } from './mapping.ts';
import {
  AccountsResponse, BalancesResponse, ConsentResponse, ObGrant, ObPending, TokenResponse, TransactionsResponse,
  type ObAccount, type ObTransaction,
} from './schemas.ts';

export interface OpenBankingAdapterOptions {
  /** Mooring's client id at the bank (`mooring` at the sandbox banks). */
  clientId?: string;
  clientSecret: string;
  /** Limit for each HTTP call to the bank. */
  timeoutMs: number;
  /** Real time, for token lifetimes (they do not follow the domain clock). */
  realNow?: () => number;
}

export const OB_CONSENT_PERMISSIONS = [
  'ReadAccountsBasic', 'ReadAccountsDetail', 'ReadBalances',
  'ReadTransactionsBasic', 'ReadTransactionsCredits', 'ReadTransactionsDebits', 'ReadTransactionsDetail',
];
/** The UK Open Banking header that tells the bank the customer is present. */
export const CUSTOMER_IP_HEADER = 'x-fapi-customer-ip-address';
/** Sent as the customer's address when a sync is attended but the caller did not give one. */
const UNKNOWN_CUSTOMER_IP = '0.0.0.0';
const TOKEN_REFRESH_MARGIN_MS = 30_000;
const DEFAULT_TOKEN_LIFETIME_S = 300;
const MAX_TRANSACTION_PAGES = 50;
const ACCOUNT_CONCURRENCY = 4;

/** The Open Banking error bodies that mean something more specific than their HTTP status. */
export const classifyOb: FailureClassifier = (f) => {
  const body = typeof f.body === 'object' && f.body !== null ? (f.body as { error?: unknown; Errors?: unknown }) : {};
  const codes = Array.isArray(body.Errors) ? body.Errors.map((e: unknown) => (e as { ErrorCode?: unknown } | null)?.ErrorCode) : [];
  if (f.status === 403 && codes.includes('UK.OBIE.Reauthenticate')) return 'mfa_required';
  if (f.status === 400 && body.error === 'invalid_grant') return 'credentials';
  return undefined;
};

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function createOpenBankingAdapter(opts: OpenBankingAdapterOptions): ProviderAdapter {
  const realNow = opts.realNow ?? Date.now;
  const clientId = opts.clientId ?? 'mooring';
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(opts.clientSecret)}`).toString('base64')}`;
  const fapi = (): Record<string, string> => ({ 'x-fapi-interaction-id': randomUUID() });

  const tokenCall = async (provider: CatalogEntry, form: Record<string, string>) =>
    checkShape(TokenResponse, await callProvider({ method: 'POST', url: `${provider.baseUrl}/token`, headers: { authorization: basic }, form, timeoutMs: opts.timeoutMs }), 'the token response');

  const clientToken = async (provider: CatalogEntry): Promise<string> =>
    (await tokenCall(provider, { grant_type: 'client_credentials', scope: 'accounts' })).access_token;

  const expiresAt = (expiresIn: number | undefined): string => new Date(realNow() + (expiresIn ?? DEFAULT_TOKEN_LIFETIME_S) * 1000).toISOString();

  const deleteConsent = async (provider: CatalogEntry, consentId: string): Promise<void> => {
    try {
      const token = await clientToken(provider);
      await callProvider({
        method: 'DELETE', url: `${provider.baseUrl}/aisp/account-access-consents/${encodeURIComponent(consentId)}`,
        headers: { authorization: `Bearer ${token}`, ...fapi() }, timeoutMs: opts.timeoutMs,
      });
    } catch (err) {
      // Already gone (or the provider withdrawn): nothing left to revoke.
      if (err instanceof HttpStatusFailure && (err.status === 404 || err.status === 410)) return;
      throw err;
    }
  };

  const readGrant = (provider: CatalogEntry, grant: JsonObject): ObGrant => {
    if (!ObGrant.Check(grant)) throw new ProviderError('credentials', `The stored authorisation for ${provider.name} is unusable; the user must authorise again`);
    return grant;
  };

  return {
    startAuthorisation: (input) =>
      atEdge(input.provider.name, classifyOb, async () => {
        const { provider } = input;
        const token = await clientToken(provider);
        const answer = await callProvider({
          method: 'POST', url: `${provider.baseUrl}/aisp/account-access-consents`, headers: { authorization: `Bearer ${token}`, ...fapi() },
          json: {
            Data: { Permissions: OB_CONSENT_PERMISSIONS, ...(input.consentExpiresAt === null ? {} : { ExpirationDateTime: input.consentExpiresAt.toISOString() }) },
            Risk: {},
          },
          timeoutMs: opts.timeoutMs,
        });
        const consent = checkShape(ConsentResponse, answer, 'the consent');
        if (consent.Data.Status !== 'AwaitingAuthorisation') throw new ResponseShapeFailure(`a new consent is ${consent.Data.Status}`);
        const url = new URL(`${provider.baseUrl}/authorize`);
        url.search = new URLSearchParams({
          client_id: clientId, response_type: 'code', scope: 'openid accounts', redirect_uri: input.callbackUrl, state: input.state,
          consent_id: consent.Data.ConsentId,
        }).toString();
        const previous = input.existingGrant !== undefined && ObGrant.Check(input.existingGrant) ? input.existingGrant.consentId : undefined;
        const pending = { consentId: consent.Data.ConsentId, state: input.state, ...(previous === undefined ? {} : { previousConsentId: previous }) };
        return { kind: 'redirect', url: url.toString(), pending };
      }),

    completeAuthorisation: (input) =>
      atEdge(input.provider.name, classifyOb, async () => {
        const { provider } = input;
        if (!ObPending.Check(input.pending)) throw new ResponseShapeFailure('the pending journey state is unreadable');
        const pending = input.pending;
        const { error, code, state } = input.input;
        if (error !== undefined) {
          if (error === 'server_error' || error === 'temporarily_unavailable') throw new ProviderError('unavailable', `${provider.name} could not complete the authorisation`);
          throw new ProviderError('journey_rejected', `The authorisation was cancelled or declined at ${provider.name}`);
        }
        if (state !== pending.state) throw new ResponseShapeFailure('the callback state does not match this journey');
        if (code === undefined || code === '') throw new ResponseShapeFailure('the callback carries no code');
        const tokens = await tokenCall(provider, { grant_type: 'authorization_code', code, redirect_uri: input.callbackUrl });
        if (pending.previousConsentId !== undefined && pending.previousConsentId !== pending.consentId) {
          // Re-authorisation replaced the old consent; withdrawing it is good manners, not essential.
          await deleteConsent(provider, pending.previousConsentId).catch(() => undefined);
        }
        const grant: ObGrant = {
          consentId: pending.consentId, accessToken: tokens.access_token, accessTokenExpiresAt: expiresAt(tokens.expires_in),
          refreshToken: tokens.refresh_token ?? null,
        };
        return { kind: 'done', grant, ref: pending.consentId };
      }),

    fetch: (input) =>
      atEdge(input.provider.name, classifyOb, async (): Promise<FetchResult> => {
        const { provider } = input;
        const base = provider.baseUrl;
        let grant = readGrant(provider, input.grant);
        let refreshing: Promise<void> | null = null;
        const refresh = (): Promise<void> => {
          refreshing ??= (async () => {
            if (grant.refreshToken === null) throw new ProviderError('credentials', `${provider.name} needs the user to authorise again`);
            const t = await tokenCall(provider, { grant_type: 'refresh_token', refresh_token: grant.refreshToken });
            grant = { ...grant, accessToken: t.access_token, accessTokenExpiresAt: expiresAt(t.expires_in), refreshToken: t.refresh_token ?? grant.refreshToken };
          })();
          return refreshing;
        };
        if (Date.parse(grant.accessTokenExpiresAt) - TOKEN_REFRESH_MARGIN_MS <= realNow() || Number.isNaN(Date.parse(grant.accessTokenExpiresAt))) await refresh();

        const get = async (url: string): Promise<unknown> => {
          const attempt = (): Promise<unknown> =>
            callProvider({
              method: 'GET', url, timeoutMs: opts.timeoutMs,
              headers: { authorization: `Bearer ${grant.accessToken}`, ...fapi(), ...(input.attended ? { [CUSTOMER_IP_HEADER]: input.customerIpAddress ?? UNKNOWN_CUSTOMER_IP } : {}) },
            });
          try {
            return await attempt();
          } catch (err) {
            if (!(err instanceof HttpStatusFailure && err.status === 401)) throw err;
            await refresh();
            return attempt();
          }
        };

        const asOfs: Date[] = [];
        const noteAsOf = (meta: { LastAvailableDateTime?: string } | undefined): void => {
          if (meta?.LastAvailableDateTime !== undefined) asOfs.push(providerDate(meta.LastAvailableDateTime, 'LastAvailableDateTime'));
        };
        const list = checkShape(AccountsResponse, await get(`${base}/aisp/accounts`), 'the accounts list');
        noteAsOf(list.Meta);
        const obAccounts = list.Data.Account ?? [];
        if (new Set(obAccounts.map((a) => a.AccountId)).size !== obAccounts.length) throw new ResponseShapeFailure('the accounts list repeats an account');

        const balancesOf = async (a: ObAccount) => {
          const body = checkShape(BalancesResponse, await get(`${base}/aisp/accounts/${encodeURIComponent(a.AccountId)}/balances`), 'the balances');
          noteAsOf(body.Meta);
          return toProviderAccount(a, body.Data.Balance, provider.accountTypes.map((t) => t.name));
        };
        const transactionsOf = async (a: ObAccount): Promise<ProviderTransaction[]> => {
          const first = new URL(`${base}/aisp/accounts/${encodeURIComponent(a.AccountId)}/transactions`);
          if (input.since !== null) first.searchParams.set('fromBookingDateTime', input.since.toISOString());
          const found: ObTransaction[] = [];
          let next: string | undefined = first.toString();
          for (let page = 0; next !== undefined; page += 1) {
            if (page >= MAX_TRANSACTION_PAGES) throw new ResponseShapeFailure('too many transaction pages');
            if (new URL(next).origin !== new URL(base).origin) throw new ResponseShapeFailure('a next-page link leaves the bank');
            const answer: unknown = await get(next);
            const body = checkShape(TransactionsResponse, answer, 'a transactions page');
            noteAsOf(body.Meta);
            found.push(...(body.Data.Transaction ?? []));
            next = body.Links?.Next;
          }
          return toProviderTransactions(a.AccountId, found);
        };

        const results = await mapLimit(obAccounts, ACCOUNT_CONCURRENCY, async (a) => {
          const [account, transactions] = await Promise.allSettled([balancesOf(a), transactionsOf(a)]);
          return { a, account, transactions };
        });
        // A refusal of the whole consent on any call fails the sync; anything else loses only that part.
        for (const r of results) {
          for (const s of [r.account, r.transactions]) {
            if (s.status !== 'rejected') continue;
            const e = toProviderError(s.reason, provider.name, classifyOb);
            if (e.kind === 'credentials' || e.kind === 'mfa_required') throw e;
          }
        }
        const accounts: ProviderAccount[] = [];
        const transactions: ProviderTransaction[] = [];
        const missing: string[] = [];
        for (const r of results) {
          const label = r.a.Nickname ?? 'an account';
          if (r.account.status === 'rejected') {
            missing.push(`the balance of ${label}`);
            continue;
          }
          accounts.push(r.account.value);
          if (r.transactions.status === 'rejected') missing.push(`the transactions of ${label}`);
          else transactions.push(...r.transactions.value);
        }
        // Nothing usable came back: that is a failed sync, not a partial one (and must not move lastUpdated).
        if (obAccounts.length > 0 && accounts.length === 0) {
          const first = results.find((r) => r.account.status === 'rejected')?.account;
          throw toProviderError(first?.status === 'rejected' ? first.reason : new Error('no account data'), provider.name, classifyOb);
        }
        const asOf = asOfs.length === 0 ? null : new Date(Math.min(...asOfs.map((d) => d.getTime())));
        return {
          grant,
          asOf,
          accounts,
          transactions,
          partial: missing.length > 0,
          ...(missing.length > 0 ? { partialDetail: `${provider.name} could not provide ${missing.join(', ')}` } : {}),
        };
      }),

    revoke: (provider, grant) =>
      atEdge(provider.name, classifyOb, async () => {
        await deleteConsent(provider, readGrant(provider, grant).consentId);
      }),
  };
}
