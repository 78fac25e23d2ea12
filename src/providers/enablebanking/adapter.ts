/**
 * Mooring's Enable Banking client (SPEC §10, `enablebanking`): the Enable Banking API as its API
 * reference describes it, so the same code serves the real service and the sandbox counterpart.
 *
 * Journey: `GET /aspsps` (the configured bank, by exact name and country, and its
 * `maximum_consent_validity`) → `POST /auth` (`valid_until` = consent time + consentDays, capped by
 * the bank's maximum less a margin; `state`; `redirect_url` = the fixed callback) → the bank →
 * the callback with `code` (or `error`) → `POST /sessions`. The grant is the session: its id, its
 * `valid_until` (the connection's expiresAt) and its accounts. Enable Banking has no refresh: a
 * reauth is a new session, whose accounts keep their `identification_hash`, so Mooring's account
 * ids survive it.
 * Syncs: balances and transactions (`date_from`, following `continuation_key`) per account, one
 * call at a time (banks count every call against the customer's daily allowance). Every request
 * carries the application JWT (jwt.ts); the PSU headers only when the user is present. When a call
 * is refused for the session, the session's own status decides the error. Every failure leaves
 * through toProviderError (../http.ts) with classifyEb (errors.ts).
 */
import type { CatalogEntry } from '../catalog.ts';
import { atEdge, CallbackFailure, callProvider, checkShape, HttpStatusFailure, providerDate, ResponseShapeFailure, toProviderError } from '../http.ts';
import { ProviderError, type FetchResult, type JsonObject, type ProviderAccount, type ProviderAdapter, type ProviderTransaction } from '../provider.ts';
import type { EnableBankingSettings } from '../settings.ts';
import { classifyEb, errorCodeOf, sessionRefusal } from './errors.ts';
import { applicationJwtCache } from './jwt.ts';
import { preferredBalance, toProviderAccount, toProviderTransactions } from './mapping.ts';
import {
  AspspsResponse, AuthorizeSessionResponse, BalancesResponse, EbGrant, EbPending, SessionResponse, StartAuthorizationResponse,
  TransactionsResponse, type EbAccount, type EbAspsp, type EbTransaction,
} from './schemas.ts';

export interface EnableBankingAdapterOptions {
  /** Limit for each HTTP call to Enable Banking. */
  timeoutMs: number;
  /** Real time, for the application JWT's lifetime (Enable Banking's clock, not the domain clock). */
  realNow?: () => number;
}

/** `valid_until` stays this far inside the bank's maximum (Enable Banking checks it against its own clock). */
const CONSENT_MARGIN_MS = 3_600_000;
const MAX_TRANSACTION_PAGES = 200;
/** The PSU header Mooring can fill: the present user's IP address. */
const PSU_IP_HEADER = 'psu-ip-address';

export function settingsOf(provider: CatalogEntry): EnableBankingSettings {
  if (provider.enablebanking === undefined) throw new ProviderError('unavailable', `${provider.name} has no Enable Banking settings`);
  return provider.enablebanking;
}

/** The latest `valid_until` Enable Banking accepts for this bank at `now`. */
export const maximumValidUntil = (aspsp: EbAspsp, now: Date): Date =>
  new Date(now.getTime() + Math.max(aspsp.maximum_consent_validity * 1000 - Math.min(CONSENT_MARGIN_MS, (aspsp.maximum_consent_validity * 1000) / 2), 0));

export interface EnableBankingAdapter extends ProviderAdapter {
  /** The bank the provider names, as Enable Banking lists it (also the probe's check). */
  findAspsp(provider: CatalogEntry): Promise<EbAspsp>;
}

export function createEnableBankingAdapter(opts: EnableBankingAdapterOptions): EnableBankingAdapter {
  const realNow = opts.realNow ?? Date.now;
  const jwts = applicationJwtCache(realNow);

  const call = async (
    provider: CatalogEntry,
    req: { method: 'GET' | 'POST' | 'DELETE'; path: string; endpoint: string; query?: Record<string, string>; json?: unknown; headers?: Record<string, string> },
  ): Promise<unknown> => {
    const s = settingsOf(provider);
    const url = new URL(`${s.apiUrl}${req.path}`);
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, v);
    return callProvider({
      method: req.method, url: url.toString(), endpoint: req.endpoint, timeoutMs: opts.timeoutMs,
      headers: { authorization: `Bearer ${await jwts.get(provider.id, s)}`, ...req.headers },
      ...(req.json === undefined ? {} : { json: req.json }),
    });
  };

  async function findAspsp(provider: CatalogEntry): Promise<EbAspsp> {
    const s = settingsOf(provider);
    const body = await call(provider, {
      method: 'GET', path: '/aspsps', endpoint: '/aspsps', query: { country: s.aspsp.country, psu_type: s.psuType, service: 'AIS' },
    });
    const aspsp = checkShape(AspspsResponse, body, 'the list of banks').aspsps.find((a) => a.name === s.aspsp.name && a.country === s.aspsp.country);
    if (aspsp === undefined) {
      throw new ProviderError('unavailable', `Enable Banking does not list the bank ${provider.name} is configured for; the operator must check settings.aspsp`);
    }
    return aspsp;
  }

  const sessionPath = (sessionId: string): string => `/sessions/${encodeURIComponent(sessionId)}`;

  async function deleteSession(provider: CatalogEntry, sessionId: string): Promise<void> {
    try {
      await call(provider, { method: 'DELETE', path: sessionPath(sessionId), endpoint: '/sessions/{sessionId}' });
    } catch (err) {
      // Already gone: nothing left to close.
      if (err instanceof HttpStatusFailure && (err.status === 404 || errorCodeOf(err.body) === 'SESSION_DOES_NOT_EXIST' || errorCodeOf(err.body) === 'CLOSED_SESSION')) return;
      throw err;
    }
  }

  /** Explains a refused call by the session's own status; the original failure when that says nothing (or cannot be read). */
  async function explainRefusal(provider: CatalogEntry, grant: EbGrant, now: Date, err: unknown): Promise<unknown> {
    const kind = toProviderError(err, provider.name, classifyEb).kind;
    if (kind !== 'credentials' && kind !== 'consent_expired') return err;
    try {
      const body = await call(provider, { method: 'GET', path: sessionPath(grant.sessionId), endpoint: '/sessions/{sessionId}' });
      const session = checkShape(SessionResponse, body, 'the session');
      const validUntil = new Date(session.access.valid_until);
      return sessionRefusal(provider.name, session.status, Number.isNaN(validUntil.getTime()) ? null : validUntil, now) ?? err;
    } catch {
      return err;
    }
  }

  const readGrant = (provider: CatalogEntry, grant: JsonObject): EbGrant => {
    if (!EbGrant.Check(grant)) throw new ProviderError('credentials', `The stored authorisation for ${provider.name} is unusable; the user must authorise again`);
    return grant;
  };

  return {
    findAspsp: (provider) => atEdge(provider.name, classifyEb, () => findAspsp(provider)),

    startAuthorisation: (input) =>
      atEdge(input.provider.name, classifyEb, async () => {
        const { provider } = input;
        const s = settingsOf(provider);
        const aspsp = await findAspsp(provider);
        const now = input.now ?? new Date(realNow());
        const maximum = maximumValidUntil(aspsp, now);
        // Journeys pass consent time + consentDays, for tppConsent entries too (the session is an agreement
        // with its own end, renewed by a new one: renewsConsentAtProvider); without one (consentDays: null), the bank's maximum.
        const wanted = input.consentExpiresAt ?? maximum;
        const validUntil = wanted < maximum ? wanted : maximum;
        const answer = await call(provider, {
          method: 'POST', path: '/auth', endpoint: '/auth',
          json: {
            access: { valid_until: validUntil.toISOString(), balances: true, transactions: true },
            aspsp: { name: s.aspsp.name, country: s.aspsp.country },
            state: input.state,
            redirect_url: input.callbackUrl,
            psu_type: s.psuType,
          },
        });
        const started = checkShape(StartAuthorizationResponse, answer, 'the authorisation');
        const url = new URL(started.url);
        if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ResponseShapeFailure('the authorisation URL is not a web address');
        const previous = input.existingGrant !== undefined && EbGrant.Check(input.existingGrant) ? input.existingGrant.sessionId : undefined;
        const pending = {
          state: input.state, authorizationId: started.authorization_id, validUntil: validUntil.toISOString(),
          ...(previous === undefined ? {} : { previousSessionId: previous }),
          ...(aspsp.required_psu_headers === undefined ? {} : { requiredPsuHeaders: aspsp.required_psu_headers }),
        };
        return { kind: 'redirect', url: url.toString(), pending };
      }),

    completeAuthorisation: (input) =>
      atEdge(input.provider.name, classifyEb, async () => {
        const { provider } = input;
        if (!EbPending.Check(input.pending)) throw new ResponseShapeFailure('the pending journey state is unreadable');
        const pending = input.pending;
        const params = input.input;
        if (params.state !== pending.state) throw new CallbackFailure('the callback state does not match this journey');
        if (params.error !== undefined && params.error !== '') {
          if (params.error === 'server_error' || params.error === 'temporarily_unavailable') {
            throw new ProviderError('unavailable', `${provider.name} could not complete the authorisation`, { fromCallback: true });
          }
          throw new ProviderError('journey_rejected', `The authorisation was cancelled or declined at ${provider.name}`, { fromCallback: true });
        }
        const code = params.code;
        if (code === undefined || code === '') throw new CallbackFailure('the callback carries no code');
        const answer = await call(provider, { method: 'POST', path: '/sessions', endpoint: '/sessions', json: { code } });
        const session = checkShape(AuthorizeSessionResponse, answer, 'the session');
        const validUntil = providerDate(session.access.valid_until, "the session's valid_until");
        // Accounts without a uid (blocked or closed at the bank) cannot be read in this session.
        const accounts = session.accounts.filter((a): a is EbAccount & { uid: string } => a.uid !== undefined);
        if (new Set(accounts.map((a) => a.identification_hash)).size !== accounts.length) throw new ResponseShapeFailure('the session lists an account twice');
        if (pending.previousSessionId !== undefined && pending.previousSessionId !== session.session_id) {
          // The reauth replaced the old session; closing it is good manners, not essential.
          await deleteSession(provider, pending.previousSessionId).catch(() => undefined);
        }
        const grant: EbGrant = {
          sessionId: session.session_id, validUntil: validUntil.toISOString(), accounts,
          ...(pending.requiredPsuHeaders === undefined ? {} : { requiredPsuHeaders: pending.requiredPsuHeaders }),
        };
        return { kind: 'done', grant: grant as unknown as JsonObject, ref: session.session_id, expiresAt: validUntil };
      }),

    fetch: (input) =>
      atEdge(input.provider.name, classifyEb, async (): Promise<FetchResult> => {
        const { provider } = input;
        const s = settingsOf(provider);
        const grant = readGrant(provider, input.grant);
        // The PSU headers tell the bank the customer is present: only then, and only what is known. A bank
        // that requires headers Mooring cannot know gets none ("all required PSU headers or none").
        const canSendRequired = (grant.requiredPsuHeaders ?? []).every((h) => h.toLowerCase() === PSU_IP_HEADER);
        const psuHeaders: Record<string, string> = input.attended && input.customerIpAddress !== undefined && canSendRequired
          ? { [PSU_IP_HEADER]: input.customerIpAddress }
          : {};
        const accountPath = (a: EbAccount, what: string): string => `/accounts/${encodeURIComponent(a.uid ?? '')}/${what}`;

        const balanceOf = async (a: EbAccount): Promise<ProviderAccount> => {
          const body = await call(provider, { method: 'GET', path: accountPath(a, 'balances'), endpoint: '/accounts/{accountId}/balances', headers: psuHeaders });
          const { balances } = checkShape(BalancesResponse, body, 'the balances');
          return toProviderAccount(a, preferredBalance(balances), s.psuType, input.now);
        };
        const transactionsOf = async (a: EbAccount): Promise<ProviderTransaction[]> => {
          const found: EbTransaction[] = [];
          const query: Record<string, string> = input.since === null ? {} : { date_from: input.since.toISOString().slice(0, 10) };
          let key: string | undefined;
          for (let page = 0; ; page += 1) {
            if (page >= MAX_TRANSACTION_PAGES) throw new ResponseShapeFailure('too many transaction pages');
            const body = await call(provider, {
              method: 'GET', path: accountPath(a, 'transactions'), endpoint: '/accounts/{accountId}/transactions', headers: psuHeaders,
              query: { ...query, ...(key === undefined ? {} : { continuation_key: key }) },
            });
            const answer = checkShape(TransactionsResponse, body, 'a transactions page');
            found.push(...answer.transactions);
            const next = answer.continuation_key ?? undefined;
            if (next === undefined || next === '') break;
            if (next === key) throw new ResponseShapeFailure('a transactions page repeats its continuation key');
            key = next;
          }
          return toProviderTransactions(a.identification_hash, found);
        };

        try {
          return await fetchAll();
        } catch (err) {
          throw await explainRefusal(provider, grant, input.now, err);
        }

        async function fetchAll(): Promise<FetchResult> {
          const accounts: ProviderAccount[] = [];
          const transactions: ProviderTransaction[] = [];
          const missing: string[] = [];
          let firstFailure: unknown;
          // One call at a time, in the session's order: the bank counts each against the customer's allowance.
          for (const a of grant.accounts) {
            const label = a.details ?? a.product ?? 'an account';
            const settle = async <T>(fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> => {
              try {
                return { ok: true, value: await fn() };
              } catch (err) {
                const e = toProviderError(err, provider.name, classifyEb);
                // A refusal of the whole session (or a rate limit) fails the sync; anything else loses only that part.
                if (e.kind === 'credentials' || e.kind === 'consent_expired' || e.kind === 'mfa_required' || e.kind === 'rate_limited') throw err;
                firstFailure ??= err;
                return { ok: false };
              }
            };
            const account = await settle(() => balanceOf(a));
            if (!account.ok) {
              missing.push(`the balance of ${label}`);
              continue;
            }
            accounts.push(account.value);
            const txs = await settle(() => transactionsOf(a));
            if (txs.ok) transactions.push(...txs.value);
            else missing.push(`the transactions of ${label}`);
          }
          // Nothing usable came back: a failed sync, not a partial one (and lastUpdated must not move).
          if (grant.accounts.length > 0 && accounts.length === 0) throw firstFailure ?? new ResponseShapeFailure('no account data');
          // As of the balances' own day when it is an earlier one (SPEC §5); otherwise the retrieval time.
          const dated = accounts.map((acc) => acc.balanceDate).filter((d) => d < input.now);
          const asOf = dated.length === 0 ? null : new Date(Math.min(...dated.map((d) => d.getTime())));
          return {
            grant: grant as unknown as JsonObject,
            asOf,
            accounts,
            transactions,
            partial: missing.length > 0,
            ...(missing.length > 0 ? { partialDetail: `${provider.name} could not provide ${missing.join(', ')}` } : {}),
          };
        }
      }),

    revoke: (provider, grant) =>
      atEdge(provider.name, classifyEb, async () => {
        await deleteSession(provider, readGrant(provider, grant).sessionId);
      }),
  };
}

