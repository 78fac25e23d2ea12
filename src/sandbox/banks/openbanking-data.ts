/**
 * The Open Banking sandbox banks' data endpoints (mutual-TLS listener, under
 * `/sandbox/ob/:slug/open-banking/v3.1/aisp`): accounts, balances, transactions. Each answer
 * carries Meta.LastAvailableDateTime, the bank's as-of time for the data (domain clock). The
 * accounts-list call counts one sync of the consent (behaviours.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { CatalogEntry } from '../../providers/catalog.ts';
import {
  behaviourDelay, dataAsOf, RATE_LIMIT_RETRY_AFTER_SECONDS, syncOutcome, THROTTLED_TRANSACTIONS_PAGE_SIZE, throttlesAccount, type SandboxSyncOutcome,
} from './behaviours.ts';
import {
  accountKindOf, customerSeed, decimalAmount, sandboxAccounts, sandboxBalanceMinor, sandboxTransactions,
  type SandboxAccount, type SandboxAccountKind,
} from './generator.ts';
import { peerCertificate, type SandboxObBanks } from './fapi-provider.ts';
import { AISP_PATH, sandboxResourceBase } from './fapi-settings.ts';
import { BankError, bearerToken, headerPresent, invalidToken, providerOf, type SandboxBankDeps } from './http.ts';
import { countSync, getConsent, setConsentStatus, type ConsentRow } from './store.ts';

/** The real UK Open Banking header a TPP sends when the customer is present. */
export const CUSTOMER_PRESENT_HEADER = 'x-fapi-customer-ip-address';
const TRANSACTIONS_PAGE_SIZE = 100;

const OB_SUBTYPE: Record<SandboxAccountKind, string> = {
  current: 'CurrentAccount',
  savings: 'Savings',
  card: 'CreditCard',
  pension: 'Savings',
  investment: 'Savings',
};

const Slug = Type.Object({ slug: Type.String() });
const SlugAndAccount = Type.Object({ slug: Type.String(), accountId: Type.String() });
const TransactionsQuery = Type.Object({
  fromBookingDateTime: Type.Optional(Type.String()),
  toBookingDateTime: Type.Optional(Type.String()),
  page: Type.Optional(Type.Integer({ minimum: 1 })),
});

interface ConsentContext {
  provider: CatalogEntry;
  /** The resource base URL (Links). */
  base: string;
  consent: ConsentRow;
  seed: string;
  accounts: [SandboxAccount, SandboxAccount];
  authorisedAt: Date;
  asOf: Date;
}

/**
 * The consent behind the bearer access token (bound to the presented client certificate), checked
 * for status, expiry and the permission this call needs.
 */
async function consentContext(deps: SandboxBankDeps, banks: SandboxObBanks, req: FastifyRequest, anyOf: string[]): Promise<ConsentContext> {
  const provider = providerOf(req);
  const value = bearerToken(req);
  const token = value === null ? undefined : await banks.provider(provider.bankRef).AccessToken.find(value);
  if (token === undefined || token.accountId === undefined) throw invalidToken('the access token is not valid');
  const bound = (token as unknown as { 'x5t#S256'?: string })['x5t#S256'];
  if (bound === undefined || bound !== peerCertificate(req.raw)?.thumbprint) throw invalidToken('the access token is not bound to this client certificate');
  if (!token.scopes.has('accounts')) throw new BankError(403, 'UK.OBIE.Resource.ConsentMismatch', 'The access token does not have the accounts scope');
  const consent = await getConsent(deps.db, token.accountId, provider.id);
  if (consent === null) throw invalidToken('the access token is not valid');
  if (consent.status !== 'Authorised' || consent.authorisedAt === null || consent.username === null) {
    throw new BankError(403, 'UK.OBIE.Resource.InvalidConsentStatus', `The consent is ${consent.status}`);
  }
  const now = deps.clock.now();
  // Read/Write API profile, 401: the bank expires the access token when the consent expires.
  if (consent.expiresAt !== null && consent.expiresAt <= now) throw invalidToken('the consent has expired');
  if (!anyOf.some((p) => consent.permissions.includes(p))) {
    throw new BankError(403, 'UK.OBIE.Resource.ConsentMismatch', `The consent does not grant ${anyOf.join(' or ')}`);
  }
  await behaviourDelay(consent.behaviour, deps.slowCallMs);
  const seed = customerSeed(provider.id, consent.username);
  return {
    provider,
    base: sandboxResourceBase(banks.deps.mtlsUrl, provider.bankRef),
    consent,
    seed,
    accounts: sandboxAccounts(seed, provider.accountTypes.map((t) => accountKindOf(t.name))),
    authorisedAt: consent.authorisedAt,
    asOf: dataAsOf(consent.behaviour, consent.authorisedAt, now),
  };
}

/**
 * Refuses the call as the behaviour's outcome for this sync demands ('partial' is decided per
 * account). A customer who revokes at the bank leaves the consent Revoked, as the consent endpoint shows;
 * a consent the bank ends early (`user_expired`) is Expired from now on (StatusUpdateDateTime), its
 * ExpirationDateTime unchanged.
 */
async function enforce(deps: SandboxBankDeps, ctx: ConsentContext, outcome: SandboxSyncOutcome): Promise<void> {
  if (outcome === 'revoked') await setConsentStatus(deps.db, ctx.consent.id, 'Revoked', deps.clock.now());
  if (outcome === 'expired') {
    await setConsentStatus(deps.db, ctx.consent.id, 'Expired', deps.clock.now());
    throw new BankError(403, 'UK.OBIE.Resource.InvalidConsentStatus', 'The consent has expired');
  }
  if (outcome === 'provider_error') throw new BankError(500, 'UK.OBIE.UnexpectedError', 'The bank could not answer; try again later');
  if (outcome === 'mfa_required') {
    throw new BankError(403, 'UK.OBIE.Reauthenticate', 'Strong customer authentication is required: the customer must be present');
  }
  if (outcome === 'revoked') throw new BankError(403, 'UK.OBIE.Resource.InvalidConsentStatus', 'The customer has revoked this consent');
  if (outcome === 'rate_limited') {
    // The Read/Write API profile: 429 Too Many Requests with Retry-After.
    throw new BankError(429, 'UK.OBIE.UnexpectedError', 'Too many requests for this consent; try again later', { 'retry-after': String(RATE_LIMIT_RETRY_AFTER_SECONDS) });
  }
}

function accountOf(ctx: ConsentContext, accountId: string): SandboxAccount {
  const account = ctx.accounts.find((a) => a.id === accountId);
  // Read/Write API profile: an id that does not exist is a 400, not a 404.
  if (account === undefined) throw new BankError(400, 'UK.OBIE.Resource.NotFound', `No account ${accountId}`);
  return account;
}

/**
 * A fromBookingDateTime / toBookingDateTime filter as the Account and Transaction API defines it: a
 * UTC date-time whose time part is optional (midnight) and whose time-zone part the bank ignores.
 */
function bookingDateTime(value: string | undefined, name: string): Date | null {
  if (value === undefined || value === '') return null;
  const m = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?(?:Z|[+-]\d{2}:?\d{2})?$/.exec(value);
  const d = m === null ? null : new Date(`${m[1] ?? ''}T${(m[2] ?? '00:00:00').slice(0, 12)}Z`);
  if (d === null || Number.isNaN(d.getTime())) throw new BankError(400, 'UK.OBIE.Field.InvalidDate', `${name} must be an ISO 8601 date-time`);
  return d;
}

const meta = (asOf: Date, totalPages = 1): unknown => ({ TotalPages: totalPages, LastAvailableDateTime: asOf.toISOString() });

const money = (minor: number): { Amount: { Amount: string; Currency: string }; CreditDebitIndicator: 'Credit' | 'Debit' } => ({
  Amount: { Amount: decimalAmount(Math.abs(minor)), Currency: 'GBP' },
  CreditDebitIndicator: minor < 0 ? 'Debit' : 'Credit',
});

export async function openBankingDataRoutes(app: FastifyInstance, deps: SandboxBankDeps, banks: SandboxObBanks): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const P = `${AISP_PATH}/accounts`;
  const attended = (req: FastifyRequest): boolean => headerPresent(req, CUSTOMER_PRESENT_HEADER);

  r.get(P, { schema: { params: Slug } }, async (req) => {
    const ctx = await consentContext(deps, banks, req, ['ReadAccountsBasic', 'ReadAccountsDetail']);
    const syncNumber = await countSync(deps.db, 'sandbox_consents', ctx.consent.id);
    await enforce(deps, ctx, syncOutcome(ctx.consent.behaviour, syncNumber, attended(req)));
    const detail = ctx.consent.permissions.includes('ReadAccountsDetail');
    return {
      Data: {
        Account: ctx.accounts.map((a) => ({
          AccountId: a.id,
          Status: 'Enabled',
          Currency: 'GBP',
          AccountType: 'Personal',
          AccountSubType: OB_SUBTYPE[a.kind],
          Nickname: a.name,
          ...(detail
            ? { Account: [{ SchemeName: 'UK.OBIE.SortCodeAccountNumber', Identification: `${a.sortCode}${a.accountNumber}`, Name: a.name }] }
            : {}),
        })),
      },
      Links: { Self: `${ctx.base}/accounts` },
      Meta: meta(ctx.asOf),
    };
  });

  r.get(`${P}/:accountId/balances`, { schema: { params: SlugAndAccount } }, async (req) => {
    const ctx = await consentContext(deps, banks, req, ['ReadBalances']);
    await enforce(deps, ctx, syncOutcome(ctx.consent.behaviour, Math.max(ctx.consent.fetchCount, 1), attended(req)));
    const account = accountOf(ctx, req.params.accountId);
    const balance = sandboxBalanceMinor(ctx.seed, ctx.accounts, account, ctx.asOf);
    const entry = (type: string): unknown => ({ AccountId: account.id, ...money(balance), Type: type, DateTime: ctx.asOf.toISOString() });
    return {
      Data: { Balance: [entry('InterimAvailable'), entry('InterimBooked')] },
      Links: { Self: `${ctx.base}/accounts/${account.id}/balances` },
      Meta: meta(ctx.asOf),
    };
  });

  r.get(`${P}/:accountId/transactions`, { schema: { params: SlugAndAccount, querystring: TransactionsQuery } }, async (req, reply) => {
    const ctx = await consentContext(deps, banks, req, ['ReadTransactionsBasic', 'ReadTransactionsDetail']);
    const syncNumber = Math.max(ctx.consent.fetchCount, 1);
    const outcome = syncOutcome(ctx.consent.behaviour, syncNumber, attended(req));
    await enforce(deps, ctx, outcome);
    const account = accountOf(ctx, req.params.accountId);
    // user_throttled: a limit met part-way through the sync. The Account and Transaction API's 429
    // (429Error): Retry-After in seconds and the x-fapi-interaction-id header, no body.
    if (throttlesAccount(ctx.consent.behaviour, syncNumber, ctx.accounts.indexOf(account))) {
      return reply.status(429).header('retry-after', String(RATE_LIMIT_RETRY_AFTER_SECONDS)).send();
    }
    // user_partial: the second account's transactions cannot be served.
    if (outcome === 'partial' && account.id === ctx.accounts[1].id) {
      throw new BankError(500, 'UK.OBIE.UnexpectedError', 'Transactions for this account are temporarily unavailable');
    }
    const from = bookingDateTime(req.query.fromBookingDateTime, 'fromBookingDateTime');
    const to = bookingDateTime(req.query.toBookingDateTime, 'toBookingDateTime');
    const all = sandboxTransactions(ctx.seed, ctx.accounts, { authorisedAt: ctx.authorisedAt, asOf: ctx.asOf, from, to }, account.id).reverse();
    const page = req.query.page ?? 1;
    const pageSize = ctx.consent.behaviour === 'user_throttled' ? THROTTLED_TRANSACTIONS_PAGE_SIZE : TRANSACTIONS_PAGE_SIZE;
    const totalPages = Math.max(1, Math.ceil(all.length / pageSize));
    const detail = ctx.consent.permissions.includes('ReadTransactionsDetail');
    const link = (p: number): string => {
      const u = new URL(`${ctx.base}/accounts/${account.id}/transactions`);
      if (from !== null) u.searchParams.set('fromBookingDateTime', from.toISOString());
      if (to !== null) u.searchParams.set('toBookingDateTime', to.toISOString());
      if (p > 1) u.searchParams.set('page', String(p));
      return u.toString();
    };
    return {
      Data: {
        Transaction: all.slice((page - 1) * pageSize, page * pageSize).map((t) => ({
          AccountId: account.id,
          TransactionId: t.id,
          ...money(t.amountMinor),
          Status: 'Booked',
          BookingDateTime: t.bookedAt.toISOString(),
          ValueDateTime: t.bookedAt.toISOString(),
          ...(detail ? { TransactionInformation: t.description } : {}),
        })),
      },
      Links: { Self: link(page), ...(page < totalPages ? { Next: link(page + 1) } : {}) },
      Meta: meta(ctx.asOf, totalPages),
    };
  });
}
