/**
 * The Enable Banking sandbox counterpart's banks (ASPSPs) and account endpoints:
 * `GET /accounts/{uid}/details|balances|transactions`, transactions paged by `continuation_key`
 * (a small page, so that clients' paging is exercised). Data comes from the shared generator, so
 * balances agree with transactions; the customer is the ASPSP and the username typed at login, so
 * a new session of the same customer shows the same accounts (`identification_hash`) and the same
 * transactions (`entry_reference`). The balances call of a session's first account counts one
 * sync of the session, and the behaviour (behaviours.ts) decides its outcome.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Queryable } from '../../db/db.ts';
import { providersRepository } from '../../providers/repository.ts';
import { DAY_MS } from '../../time.ts';
import { behaviourDelay, dataAsOf, syncOutcome, type SandboxSyncOutcome } from './behaviours.ts';
import { applicationOfRequest, ebError, type EbDeps } from './enablebanking-auth.ts';
import { accountUidsOf, countSessionSync, sessionOfAccount, setSessionStatus, type EbSessionRow, type EbSessionStatus } from './enablebanking-store.ts';
import {
  customerSeed, decimalAmount, sandboxAccounts, sandboxBalanceMinor, sandboxTransactions, type SandboxAccount, type SandboxAccountKind,
  type SandboxTransaction,
} from './generator.ts';
import { headerPresent } from './http.ts';

/** Transactions per page: small, so that paging is exercised. */
export const EB_TRANSACTIONS_PAGE_SIZE = 10;
/** A transaction booked this recently (before the bank's as-of time) is still pending (PDNG). */
const PENDING_FOR_MS = DAY_MS;

export interface SandboxAspsp {
  name: string;
  country: string;
  bic: string;
  psuTypes: string[];
  maximumConsentValiditySeconds: number;
  currency: string;
  kinds: SandboxAccountKind[];
  /** The PSU headers the bank requires: all of them or none (none: the customer is not present). */
  requiredPsuHeaders: string[];
}

/** The banks the counterpart lists (GET /aspsps). */
export const SANDBOX_ASPSPS: readonly SandboxAspsp[] = [
  { name: 'Mooring Sandbox Bank', country: 'GB', bic: 'MOORGB2L', psuTypes: ['personal', 'business'], maximumConsentValiditySeconds: 90 * 86_400, currency: 'GBP', kinds: ['current', 'savings'], requiredPsuHeaders: ['Psu-Ip-Address'] },
  { name: 'Mock ASPSP', country: 'FI', bic: 'MOCKFIHH', psuTypes: ['personal'], maximumConsentValiditySeconds: 180 * 86_400, currency: 'EUR', kinds: ['current', 'card'], requiredPsuHeaders: ['Psu-Ip-Address', 'Psu-User-Agent'] },
];

export const sandboxAspsp = (name: string, country: string): SandboxAspsp | undefined =>
  SANDBOX_ASPSPS.find((a) => a.name === name && a.country === country);

const CASH_ACCOUNT_TYPE: Record<SandboxAccountKind, string> = { current: 'CACC', savings: 'SVGS', card: 'CARD', pension: 'OTHR', investment: 'OTHR' };

/** The customer behind a session: its accounts, their stable identity, and their AccountResource. */
export function ebAccountData(s: EbSessionRow) {
  const aspsp = sandboxAspsp(s.aspsp.name, s.aspsp.country);
  const seed = customerSeed(`eb:${s.aspsp.country}:${s.aspsp.name}`, s.username ?? '');
  const accounts = sandboxAccounts(seed, aspsp?.kinds ?? ['current']);
  const currency = aspsp?.currency ?? 'EUR';
  const identificationHash = (a: SandboxAccount): string => createHash('sha256').update(`${seed}|${a.id}`).digest('base64url');
  return {
    seed,
    accounts,
    currency,
    identificationHash,
    resource: (a: SandboxAccount, uid: string) => ({
      uid,
      identification_hash: identificationHash(a),
      identification_hashes: [identificationHash(a)],
      account_id: { iban: `${s.aspsp.country}00MOOR${a.sortCode}${a.accountNumber}` },
      account_servicer: { bic_fi: aspsp?.bic ?? 'MOORGB2L', name: s.aspsp.name },
      name: 'Sandbox Customer',
      details: a.name,
      cash_account_type: CASH_ACCOUNT_TYPE[a.kind],
      currency,
      usage: s.psuType === 'business' ? 'ORGA' : 'PRIV',
    }),
    uids: (db: Queryable, session: EbSessionRow): Promise<string[]> => (session.sessionId === null ? Promise.resolve([]) : accountUidsOf(db, session.sessionId)),
  };
}

/** The session's status now: an AUTHORIZED session past its valid_until (domain clock) has EXPIRED. */
export async function effectiveStatus(deps: EbDeps, s: EbSessionRow): Promise<EbSessionStatus> {
  const now = deps.clock.now();
  if (s.status === 'AUTHORIZED' && s.validUntil <= now) {
    await setSessionStatus(deps.db, s.id, 'EXPIRED', now);
    return 'EXPIRED';
  }
  return s.status;
}

const SESSION_REFUSAL: Partial<Record<EbSessionStatus, [number, string, string]>> = {
  EXPIRED: [401, 'EXPIRED_SESSION', 'Session is expired'],
  REVOKED: [401, 'REVOKED_SESSION', 'Session is revoked'],
  CLOSED: [401, 'CLOSED_SESSION', 'Session is closed'],
};

interface AccountContext {
  session: EbSessionRow;
  position: number;
  account: SandboxAccount;
  data: ReturnType<typeof ebAccountData>;
  asOf: Date;
  attended: boolean;
}

/** True while a declared outage (the sandbox control API) holds for a provider entry of this application and bank. */
async function inOutage(deps: EbDeps, s: EbSessionRow): Promise<boolean> {
  const now = deps.clock.now();
  const entries = deps.enableBanking.applications.all().filter((e) => e.enablebanking?.applicationId === s.applicationId
    && e.enablebanking.aspsp.name === s.aspsp.name && e.enablebanking.aspsp.country === s.aspsp.country);
  for (const e of entries) {
    const o = await providersRepository(deps.db).override(e.id);
    if (o.outageUntil !== null && o.outageUntil > now) return true;
  }
  return false;
}

/**
 * Whether the request says the customer is present: all of the bank's required PSU headers (or,
 * when it requires none, Psu-Ip-Address). Some but not all of them is PSU_HEADER_NOT_PROVIDED.
 */
function psuPresent(req: FastifyRequest, required: string[]): boolean {
  const sent = required.filter((h) => headerPresent(req, h.toLowerCase()));
  if (sent.length > 0 && sent.length < required.length) {
    throw ebError(422, 'PSU_HEADER_NOT_PROVIDED', `Required PSU header is not provided: ${required.filter((h) => !sent.includes(h)).join(', ')}`);
  }
  return required.length > 0 ? sent.length === required.length : headerPresent(req, 'psu-ip-address');
}

async function accountContext(deps: EbDeps, req: FastifyRequest): Promise<AccountContext> {
  const { applicationId } = applicationOfRequest(req);
  const uid = (req.params as { uid: string }).uid;
  const found = await sessionOfAccount(deps.db, uid, applicationId);
  if (found === null) throw ebError(404, 'ACCOUNT_DOES_NOT_EXIST', 'No such account');
  const { session, position } = found;
  const status = await effectiveStatus(deps, session);
  const refusal = SESSION_REFUSAL[status];
  if (refusal !== undefined) throw ebError(...refusal);
  if (status !== 'AUTHORIZED' || session.authorizedAt === null) throw ebError(422, 'WRONG_SESSION_STATUS', `Session is ${status}`);
  if (await inOutage(deps, session)) throw ebError(500, 'ASPSP_ERROR', 'The bank is temporarily unavailable');
  await behaviourDelay(session.behaviour, deps.slowCallMs);
  const data = ebAccountData(session);
  const account = data.accounts[position];
  if (account === undefined) throw ebError(404, 'ACCOUNT_DOES_NOT_EXIST', 'No such account');
  return {
    session, position, account, data,
    asOf: dataAsOf(session.behaviour, session.authorizedAt, deps.clock.now()),
    attended: psuPresent(req, sandboxAspsp(session.aspsp.name, session.aspsp.country)?.requiredPsuHeaders ?? []),
  };
}

/** Refuses the call as the behaviour's outcome for this sync demands ('partial' is decided per call). */
async function enforce(deps: EbDeps, ctx: AccountContext, outcome: SandboxSyncOutcome): Promise<void> {
  switch (outcome) {
    case 'provider_error':
      throw ebError(500, 'ASPSP_ERROR', 'The bank could not answer; try again later');
    case 'mfa_required':
      throw ebError(422, 'ASPSP_PSU_ACTION_REQUIRED', 'The bank requires the customer to be present');
    case 'revoked':
      // The customer withdrew access at the bank: the session is REVOKED from now on.
      await setSessionStatus(deps.db, ctx.session.id, 'REVOKED', deps.clock.now());
      throw ebError(401, 'REVOKED_SESSION', 'Session is revoked');
    case 'expired':
      // The bank ended access before valid_until: the session is EXPIRED from now on.
      await setSessionStatus(deps.db, ctx.session.id, 'EXPIRED', deps.clock.now());
      throw ebError(401, 'EXPIRED_SESSION', 'Session is expired');
    case 'rate_limited':
      // Enable Banking documents no reset header for this.
      throw ebError(429, 'ASPSP_RATE_LIMIT_EXCEEDED', 'The bank limits how often this account may be read');
    default:
  }
}

const dateOf = (d: Date): string => d.toISOString().slice(0, 10);
const DATE = /^\d{4}-\d{2}-\d{2}$/;

const TransactionsQuery = Type.Object({
  date_from: Type.Optional(Type.String()),
  date_to: Type.Optional(Type.String()),
  continuation_key: Type.Optional(Type.String()),
  transaction_status: Type.Optional(Type.String()),
  strategy: Type.Optional(Type.String()),
});
const UidParams = Type.Object({ uid: Type.String() });

interface Continuation {
  s: string;
  u: string;
  o: number;
  f: string | null;
  t: string | null;
}

function transactionJson(t: SandboxTransaction, currency: string, pending: boolean): unknown {
  const day = dateOf(t.bookedAt);
  return {
    entry_reference: t.id,
    transaction_amount: { currency, amount: decimalAmount(Math.abs(t.amountMinor)) },
    credit_debit_indicator: t.amountMinor < 0 ? 'DBIT' : 'CRDT',
    status: pending ? 'PDNG' : 'BOOK',
    ...(pending ? {} : { booking_date: day }),
    value_date: day,
    transaction_date: day,
    remittance_information: [t.description],
  };
}

export async function ebAccountRoutes(app: FastifyInstance, deps: EbDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const P = '/sandbox/enablebanking/accounts/:uid';

  r.get(`${P}/details`, { schema: { params: UidParams } }, async (req) => {
    const ctx = await accountContext(deps, req);
    return ctx.data.resource(ctx.account, req.params.uid);
  });

  r.get(`${P}/balances`, { schema: { params: UidParams } }, async (req) => {
    const ctx = await accountContext(deps, req);
    const syncNumber = ctx.position === 0 ? await countSessionSync(deps.db, ctx.session.id) : Math.max(ctx.session.fetchCount, 1);
    await enforce(deps, ctx, syncOutcome(ctx.session.behaviour, syncNumber, ctx.attended));
    const { seed, accounts, currency } = ctx.data;
    const available = sandboxBalanceMinor(seed, accounts, ctx.account, ctx.asOf);
    const visible = sandboxTransactions(seed, accounts, { authorisedAt: ctx.session.authorizedAt ?? ctx.asOf, asOf: ctx.asOf }, ctx.account.id);
    const pendingMinor = visible.filter((t) => t.bookedAt.getTime() > ctx.asOf.getTime() - PENDING_FOR_MS).reduce((sum, t) => sum + t.amountMinor, 0);
    const last = visible.at(-1);
    const balance = (name: string, type: string, minor: number): unknown => ({
      name, balance_type: type, balance_amount: { currency, amount: decimalAmount(minor) }, reference_date: dateOf(ctx.asOf),
      ...(last === undefined ? {} : { last_change_date_time: last.bookedAt.toISOString() }),
    });
    return { balances: [balance('Interim available', 'ITAV', available), balance('Interim booked', 'ITBD', available - pendingMinor)] };
  });

  r.get(`${P}/transactions`, { schema: { params: UidParams, querystring: TransactionsQuery } }, async (req) => {
    const ctx = await accountContext(deps, req);
    const outcome = syncOutcome(ctx.session.behaviour, Math.max(ctx.session.fetchCount, 1), ctx.attended);
    await enforce(deps, ctx, outcome);
    // user_partial: the second account's transactions cannot be served.
    if (outcome === 'partial' && ctx.position === 1) throw ebError(500, 'ASPSP_ERROR', 'Transactions for this account are temporarily unavailable');
    let { date_from: from = null, date_to: to = null } = req.query;
    let offset = 0;
    if (req.query.continuation_key !== undefined) {
      let c: Continuation | null;
      try {
        c = JSON.parse(Buffer.from(req.query.continuation_key, 'base64url').toString('utf8')) as Continuation;
      } catch {
        c = null;
      }
      if (c === null || c.s !== ctx.session.sessionId || c.u !== req.params.uid || typeof c.o !== 'number') {
        throw ebError(422, 'WRONG_CONTINUATION_KEY', 'The continuation key is not valid for this session and account');
      }
      ({ f: from, t: to, o: offset } = c);
    }
    if ((from !== null && !DATE.test(from)) || (to !== null && !DATE.test(to))) throw ebError(422, 'WRONG_REQUEST_PARAMETERS', 'date_from and date_to are dates (YYYY-MM-DD)');
    if (to !== null && from === null) throw ebError(422, 'DATE_TO_WITHOUT_DATE_FROM', 'date_to needs date_from');
    if (from !== null && from > dateOf(deps.clock.now())) throw ebError(422, 'DATE_FROM_IN_FUTURE', 'date_from is in the future');
    if (from !== null && to !== null && to < from) throw ebError(422, 'WRONG_DATE_INTERVAL', 'date_to is before date_from');
    const { seed, accounts, currency } = ctx.data;
    const all = sandboxTransactions(seed, accounts, { authorisedAt: ctx.session.authorizedAt ?? ctx.asOf, asOf: ctx.asOf }, ctx.account.id)
      .filter((t) => (from === null || dateOf(t.bookedAt) >= from) && (to === null || dateOf(t.bookedAt) <= to))
      .reverse();
    const page = all.slice(offset, offset + EB_TRANSACTIONS_PAGE_SIZE);
    const more = offset + EB_TRANSACTIONS_PAGE_SIZE < all.length;
    const next: Continuation = { s: ctx.session.sessionId ?? '', u: req.params.uid, o: offset + EB_TRANSACTIONS_PAGE_SIZE, f: from, t: to };
    return {
      transactions: page.map((t) => transactionJson(t, currency, t.bookedAt.getTime() > ctx.asOf.getTime() - PENDING_FOR_MS)),
      continuation_key: more ? Buffer.from(JSON.stringify(next)).toString('base64url') : null,
    };
  });
}
