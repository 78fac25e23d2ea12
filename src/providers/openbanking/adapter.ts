/**
 * Mooring's Open Banking AIS client: the UK Open Banking Read/Write API v3.1.x with the FAPI 1.0
 * Advanced security profile, so the same code serves a real bank and the sandbox banks (SPEC §10).
 *
 * Journey: a client-credentials token (scope `accounts`) → POST /account-access-consents → a PS256
 * request object carrying the consent as the essential `openbanking_intent_id` claim, nonce, state
 * and PKCE → the bank's authorise page → the callback (JARM `response`, or a hybrid `code id_token`
 * relayed from the URL fragment) → response and ID token verified against the bank's keys (iss,
 * aud, nonce, c_hash, s_hash, the intent id) → code exchange with the PKCE verifier.
 * Syncs: accounts, balances, transactions (following Links.Next) with x-fapi-* headers over mutual
 * TLS; refresh tokens are used and rotated; when a call is refused the consent's own status decides
 * the error. Every failure leaves through toProviderError (../http.ts) with classifyOb below.
 */
import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import type { CatalogEntry } from '../catalog.ts';
import {
  atEdge, CallbackFailure, callProvider, checkShape, HttpStatusFailure, RateLimitStop, ResponseShapeFailure, toProviderError, type FailureClassifier,
} from '../http.ts';
import { mapLimit } from '../map-limit.ts';
import { ProviderError, type FetchResult, type JsonObject, type ProviderAccount, type ProviderAdapter, type ProviderTransaction } from '../provider.ts';
import { fromOidcError, obClientCache, watchPosts, type ObClient } from './client.ts';
import { toProviderAccount, toProviderTransactions } from './mapping.ts';
import {
  AccountsResponse, BalancesResponse, ConsentResponse, ObGrant, ObPending, TransactionsResponse,
  type ObAccount, type ObTransaction,
} from './schemas.ts';

export interface OpenBankingAdapterOptions {
  /** Limit for each HTTP call to the bank. */
  timeoutMs: number;
  /** Real time, for token lifetimes (they do not follow the domain clock). */
  realNow?: () => number;
}

/** The read permissions the account, balance and transaction endpoints need (the default of a provider's `permissions`). */
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
/** The ID token claim that names the consent the user authorised (Open Banking's intent id). */
const INTENT_CLAIM = 'openbanking_intent_id';

/** The Open Banking and OAuth error bodies that mean something more specific than their HTTP status. */
export const classifyOb: FailureClassifier = (f) => {
  const body = typeof f.body === 'object' && f.body !== null ? (f.body as { error?: unknown; Errors?: unknown }) : {};
  const codes = Array.isArray(body.Errors) ? body.Errors.map((e: unknown) => (e as { ErrorCode?: unknown } | null)?.ErrorCode) : [];
  if (codes.includes('UK.OBIE.Reauthenticate')) return 'mfa_required';
  if (f.status === 400 && body.error === 'invalid_grant') return 'credentials';
  if (body.error === 'invalid_client' || body.error === 'unauthorized_client') {
    return { kind: 'unavailable', detail: "The bank refused Mooring's client authentication; the operator must check this provider's registration and certificates" };
  }
  return undefined;
};

/**
 * What an authorisation error sent back to the callback means. `fromCallback`: only the browser
 * vouches for it (a plain `error` parameter), unlike an error inside a JARM response the bank signed.
 */
function callbackError(provider: CatalogEntry, error: string, fromCallback: boolean): ProviderError {
  if (error === 'server_error' || error === 'temporarily_unavailable') return new ProviderError('unavailable', `${provider.name} could not complete the authorisation`, { fromCallback });
  return new ProviderError('journey_rejected', `The authorisation was cancelled or declined at ${provider.name}`, { fromCallback });
}

/** A date-time the bank gave, or undefined when it gave none or an unreadable one. */
const bankTime = (value: string | undefined): Date | undefined => {
  const at = value === undefined ? Number.NaN : Date.parse(value);
  return Number.isNaN(at) ? undefined : new Date(at);
};

/**
 * What a consent's status at the bank says about a refused call, or undefined when it explains
 * nothing. `Expired` (or an ExpirationDateTime that has passed) is an expired consent, at the
 * ExpirationDateTime when that has passed, else when the status changed (StatusUpdateDateTime).
 */
function consentRefusal(provider: CatalogEntry, consent: { Status: string; StatusUpdateDateTime?: string | undefined; ExpirationDateTime?: string | undefined }, now: Date): ProviderError | undefined {
  const expiration = bankTime(consent.ExpirationDateTime);
  const lapsed = expiration !== undefined && expiration.getTime() <= now.getTime() ? expiration : undefined;
  const expired = (at: Date | undefined): ProviderError =>
    new ProviderError('consent_expired', `This connection's consent expired at ${provider.name}; the user must authorise again`, { expiredAt: at });
  switch (consent.Status) {
    case 'Revoked':
      return new ProviderError('credentials', `The user withdrew this connection's consent at ${provider.name}; they must authorise again`);
    case 'Rejected':
      return new ProviderError('credentials', `${provider.name} rejected this connection's consent; the user must authorise again`);
    case 'Expired':
      return expired(lapsed ?? bankTime(consent.StatusUpdateDateTime));
    default:
      return lapsed === undefined ? undefined : expired(lapsed);
  }
}

export function createOpenBankingAdapter(opts: OpenBankingAdapterOptions): ProviderAdapter & { close(): Promise<void> } {
  const realNow = opts.realNow ?? Date.now;
  const clients = obClientCache({ timeoutMs: opts.timeoutMs, realNow });
  /** Client-credentials tokens by provider id, reused until shortly before they expire. */
  const clientTokens = new Map<string, { token: string; until: number }>();

  const oidcCall = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw fromOidcError(err, what);
    }
  };

  const expiresAt = (expiresIn: number | undefined): string => new Date(realNow() + (expiresIn ?? DEFAULT_TOKEN_LIFETIME_S) * 1000).toISOString();

  async function clientToken(c: ObClient, provider: CatalogEntry): Promise<string> {
    const cached = clientTokens.get(provider.id);
    if (cached !== undefined && cached.until > realNow()) return cached.token;
    const t = await oidcCall(`the token endpoint of ${provider.name}`, () => oidc.clientCredentialsGrant(c.config, { scope: 'accounts' }));
    clientTokens.set(provider.id, { token: t.access_token, until: realNow() + (t.expires_in ?? DEFAULT_TOKEN_LIFETIME_S) * 1000 - TOKEN_REFRESH_MARGIN_MS });
    return t.access_token;
  }

  /** The x-fapi-* headers of every resource call (and the customer's presence when attended). */
  const fapiHeaders = (c: ObClient, extra: { authTime?: string | null; customerIp?: string } = {}): Record<string, string> => ({
    'x-fapi-interaction-id': randomUUID(),
    ...(c.settings.financialId === null ? {} : { 'x-fapi-financial-id': c.settings.financialId }),
    ...(extra.authTime === undefined || extra.authTime === null ? {} : { 'x-fapi-auth-date': new Date(extra.authTime).toUTCString() }),
    ...(extra.customerIp === undefined ? {} : { [CUSTOMER_IP_HEADER]: extra.customerIp }),
  });

  const consentUrl = (c: ObClient, consentId?: string): string =>
    `${c.settings.resourceBaseUrl}/account-access-consents${consentId === undefined ? '' : `/${encodeURIComponent(consentId)}`}`;

  async function readConsent(c: ObClient, provider: CatalogEntry, consentId: string) {
    const token = await clientToken(c, provider);
    const body = await callProvider({
      method: 'GET', url: consentUrl(c, consentId), endpoint: '/account-access-consents/{consentId}', headers: { authorization: `Bearer ${token}`, ...fapiHeaders(c) },
      timeoutMs: opts.timeoutMs, dispatcher: c.dispatcher,
    });
    return checkShape(ConsentResponse, body, 'the consent').Data;
  }

  async function deleteConsent(c: ObClient, provider: CatalogEntry, consentId: string): Promise<void> {
    try {
      const token = await clientToken(c, provider);
      await callProvider({
        method: 'DELETE', url: consentUrl(c, consentId), endpoint: '/account-access-consents/{consentId}', headers: { authorization: `Bearer ${token}`, ...fapiHeaders(c) },
        timeoutMs: opts.timeoutMs, dispatcher: c.dispatcher,
      });
    } catch (err) {
      // Already gone (or the provider withdrawn): nothing left to revoke.
      if (err instanceof HttpStatusFailure && (err.status === 404 || err.status === 410)) return;
      throw err;
    }
  }

  /** Explains a refused call by the consent's own status; the original failure when that says nothing (or cannot be read). */
  async function explainRefusal(c: ObClient, provider: CatalogEntry, consentId: string, now: Date, err: unknown): Promise<unknown> {
    const refused = toProviderError(err, provider.name, classifyOb);
    if (refused.kind !== 'credentials') return err;
    try {
      const consent = await readConsent(c, provider, consentId);
      return consentRefusal(provider, consent, now) ?? err;
    } catch {
      return err;
    }
  }

  const readGrant = (provider: CatalogEntry, grant: JsonObject): ObGrant => {
    if (!ObGrant.Check(grant)) throw new ProviderError('credentials', `The stored authorisation for ${provider.name} is unusable; the user must authorise again`);
    return grant;
  };

  return {
    close: () => clients.close(),

    startAuthorisation: (input) =>
      atEdge(input.provider.name, classifyOb, async () => {
        const { provider } = input;
        const c = await clients.get(provider);
        const token = await clientToken(c, provider);
        const answer = await callProvider({
          method: 'POST', url: consentUrl(c), endpoint: '/account-access-consents', headers: { authorization: `Bearer ${token}`, ...fapiHeaders(c) },
          json: {
            Data: { Permissions: c.settings.permissions, ...(input.consentExpiresAt === null ? {} : { ExpirationDateTime: input.consentExpiresAt.toISOString() }) },
            Risk: {},
          },
          timeoutMs: opts.timeoutMs, dispatcher: c.dispatcher,
        });
        const consent = checkShape(ConsentResponse, answer, 'the consent');
        if (consent.Data.Status !== 'AwaitingAuthorisation') throw new ResponseShapeFailure(`a new consent is ${consent.Data.Status}`);
        const consentId = consent.Data.ConsentId;
        const nonce = oidc.randomNonce();
        const codeVerifier = oidc.randomPKCECodeVerifier();
        const intent = { value: consentId, essential: true };
        const url = await oidcCall('the request object', async () =>
          oidc.buildAuthorizationUrlWithJAR(c.config, {
            redirect_uri: input.callbackUrl,
            scope: 'openid accounts',
            state: input.state,
            nonce,
            code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
            code_challenge_method: 'S256',
            claims: JSON.stringify({ id_token: { [INTENT_CLAIM]: intent }, userinfo: { [INTENT_CLAIM]: intent } }),
          }, c.signingKey));
        // OpenID Connect asks for these outside the request object too (they must match it).
        url.searchParams.set('response_type', c.settings.responseType);
        url.searchParams.set('scope', 'openid accounts');
        url.searchParams.set('redirect_uri', input.callbackUrl);
        const previous = input.existingGrant !== undefined && ObGrant.Check(input.existingGrant) ? input.existingGrant.consentId : undefined;
        const pending = { consentId, state: input.state, nonce, codeVerifier, ...(previous === undefined ? {} : { previousConsentId: previous }) };
        return { kind: 'redirect', url: url.toString(), pending };
      }),

    completeAuthorisation: (input) =>
      atEdge(input.provider.name, classifyOb, async () => {
        const { provider } = input;
        if (!ObPending.Check(input.pending)) throw new ResponseShapeFailure('the pending journey state is unreadable');
        const pending = input.pending;
        const c = await clients.get(provider);
        const params = input.input;
        const jarm = c.settings.responseType === 'code';
        // A plain error (the bank could not even sign one) ends the journey; anything else is verified below.
        if (params.error !== undefined && params.response === undefined && params.id_token === undefined) {
          if (params.state !== pending.state) throw new CallbackFailure('the callback state does not match this journey');
          throw callbackError(provider, params.error, true);
        }
        const current = new URL(input.callbackUrl);
        if (jarm) {
          if (params.response === undefined) throw new CallbackFailure('the callback carries no JARM response');
          current.searchParams.set('response', params.response);
        } else {
          current.hash = new URLSearchParams(params).toString();
        }
        let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
        const watch = { posted: false };
        try {
          tokens = await watchPosts(watch, () => oidc.authorizationCodeGrant(c.config, current, {
            pkceCodeVerifier: pending.codeVerifier, expectedNonce: pending.nonce, expectedState: pending.state, idTokenExpected: true,
          }));
        } catch (err) {
          // A JARM response's error was verified as the bank's; a hybrid answer's is only the browser's word.
          if (err instanceof oidc.AuthorizationResponseError) throw callbackError(provider, err.error, !jarm);
          const failure = fromOidcError(err, `the authorisation response of ${provider.name}`);
          // Unreadable or unverifiable before the token request: the answer the browser brought back, not a call of Mooring's.
          if (failure instanceof ResponseShapeFailure && !watch.posted) throw new CallbackFailure(failure.message);
          throw failure;
        }
        const claims = tokens.claims();
        if (claims === undefined || claims[INTENT_CLAIM] !== pending.consentId) {
          throw new ResponseShapeFailure('the ID token does not name the consent the user was asked to authorise');
        }
        if (!jarm && params.id_token !== undefined) {
          // The front-channel ID token (verified by openid-client: signature, nonce, c_hash, s_hash) must name the same consent.
          const front = JSON.parse(Buffer.from(params.id_token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
          if (front[INTENT_CLAIM] !== pending.consentId) throw new ResponseShapeFailure('the ID token does not name the consent the user was asked to authorise');
        }
        if (pending.previousConsentId !== undefined && pending.previousConsentId !== pending.consentId) {
          // Re-authorisation replaced the old consent; withdrawing it is good manners, not essential.
          await deleteConsent(c, provider, pending.previousConsentId).catch(() => undefined);
        }
        const authTime = typeof claims.auth_time === 'number' ? new Date(claims.auth_time * 1000).toISOString() : new Date(realNow()).toISOString();
        const grant: ObGrant = {
          consentId: pending.consentId, accessToken: tokens.access_token, accessTokenExpiresAt: expiresAt(tokens.expires_in),
          refreshToken: tokens.refresh_token ?? null, authTime,
        };
        return { kind: 'done', grant, ref: pending.consentId };
      }),

    fetch: (input) =>
      atEdge(input.provider.name, classifyOb, async (): Promise<FetchResult> => {
        const { provider } = input;
        const c = await clients.get(provider);
        const base = c.settings.resourceBaseUrl;
        let grant = readGrant(provider, input.grant);
        let refreshing: Promise<void> | null = null;
        const refresh = (): Promise<void> => {
          refreshing ??= (async () => {
            if (grant.refreshToken === null) throw new ProviderError('credentials', `${provider.name} needs the user to authorise again`);
            const refreshToken = grant.refreshToken;
            const t = await oidcCall(`the token endpoint of ${provider.name}`, () => oidc.refreshTokenGrant(c.config, refreshToken));
            // Rotation: the bank may issue a new refresh token; the old one is then spent.
            grant = { ...grant, accessToken: t.access_token, accessTokenExpiresAt: expiresAt(t.expires_in), refreshToken: t.refresh_token ?? grant.refreshToken };
          })();
          return refreshing;
        };
        const headers = (): Record<string, string> => ({
          authorization: `Bearer ${grant.accessToken}`,
          ...fapiHeaders(c, { authTime: grant.authTime ?? null, ...(input.attended ? { customerIp: input.customerIpAddress ?? UNKNOWN_CUSTOMER_IP } : {}) }),
        });
        // The bank's first 429 stops every later call of this fetch, every account's (SPEC §10).
        const stop = new RateLimitStop(provider.name, classifyOb);
        const get = async (url: string, endpoint: string): Promise<unknown> => {
          const attempt = (): Promise<unknown> => callProvider({ method: 'GET', url, endpoint, timeoutMs: opts.timeoutMs, headers: headers(), dispatcher: c.dispatcher, stop });
          try {
            return await attempt();
          } catch (err) {
            if (!(err instanceof HttpStatusFailure && err.status === 401)) throw err;
            stop.check();
            await refresh();
            return attempt();
          }
        };

        try {
          if (Date.parse(grant.accessTokenExpiresAt) - TOKEN_REFRESH_MARGIN_MS <= realNow() || Number.isNaN(Date.parse(grant.accessTokenExpiresAt))) await refresh();
          return await fetchAll();
        } catch (err) {
          throw await explainRefusal(c, provider, grant.consentId, input.now, err);
        }

        async function fetchAll(): Promise<FetchResult> {
          const list = checkShape(AccountsResponse, await get(`${base}/accounts`, '/accounts'), 'the accounts list');
          const obAccounts = list.Data.Account ?? [];
          if (new Set(obAccounts.map((a) => a.AccountId)).size !== obAccounts.length) throw new ResponseShapeFailure('the accounts list repeats an account');

          const balancesOf = async (a: ObAccount) => {
            const body = checkShape(BalancesResponse, await get(`${base}/accounts/${encodeURIComponent(a.AccountId)}/balances`, '/accounts/{accountId}/balances'), 'the balances');
            return toProviderAccount(a, body.Data.Balance, provider.accountTypes.map((t) => t.name));
          };
          const transactionsOf = async (a: ObAccount): Promise<ProviderTransaction[]> => {
            const first = new URL(`${base}/accounts/${encodeURIComponent(a.AccountId)}/transactions`);
            if (input.since !== null) first.searchParams.set('fromBookingDateTime', input.since.toISOString().slice(0, 19));
            const found: ObTransaction[] = [];
            let next: string | undefined = first.toString();
            for (let page = 0; next !== undefined; page += 1) {
              if (page >= MAX_TRANSACTION_PAGES) throw new ResponseShapeFailure('too many transaction pages');
              if (new URL(next).origin !== new URL(base).origin) throw new ResponseShapeFailure('a next-page link leaves the bank');
              const answer: unknown = await get(next, '/accounts/{accountId}/transactions');
              const body = checkShape(TransactionsResponse, answer, 'a transactions page');
              found.push(...(body.Data.Transaction ?? []));
              next = body.Links?.Next;
            }
            return toProviderTransactions(a.AccountId, found);
          };

          const results = await mapLimit(obAccounts, ACCOUNT_CONCURRENCY, async (a) => {
            const [account, transactions] = await Promise.allSettled([balancesOf(a), transactionsOf(a)]);
            return { a, account, transactions };
          });
          // A rate limit ends the sync as rate-limited, whatever else failed after it; a refusal of the
          // whole consent on any call fails the sync; anything else loses only that part.
          if (stop.tripped !== undefined) throw stop.tripped.failure;
          for (const r of results) {
            for (const s of [r.account, r.transactions]) {
              if (s.status !== 'rejected') continue;
              const e = toProviderError(s.reason, provider.name, classifyOb);
              if (e.kind === 'credentials' || e.kind === 'consent_expired' || e.kind === 'mfa_required' || e.kind === 'rate_limited') throw s.reason;
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
            throw first?.status === 'rejected' ? first.reason : new ResponseShapeFailure('no account data');
          }
          // The as-of time is the balances' own date-time (SPEC §5), never Meta.LastAvailableDateTime.
          const asOf = accounts.length === 0 ? null : new Date(Math.min(...accounts.map((a) => a.balanceDate.getTime())));
          return {
            grant,
            asOf,
            accounts,
            transactions,
            partial: missing.length > 0,
            ...(missing.length > 0 ? { partialDetail: `${provider.name} could not provide ${missing.join(', ')}` } : {}),
          };
        }
      }),

    revoke: (provider, grant) =>
      atEdge(provider.name, classifyOb, async () => {
        const c = await clients.get(provider);
        await deleteConsent(c, provider, readGrant(provider, grant).consentId);
      }),
  };
}
