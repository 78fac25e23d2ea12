/**
 * GoCardless data → Mooring's provider data, and GoCardless's statuses and error bodies → the
 * closed set of ProviderErrors. Pure functions: amounts become integer minor units exactly;
 * transactions without an upstream id get one derived from their stable fields.
 */
import { decimalToMinor, ResponseShapeFailure, type FailureClassifier } from '../http.ts';
import { ProviderError, type ProviderAccount, type ProviderTransaction } from '../provider.ts';
import type { GcAccountDetails, GcAccountMetadata, GcBalance, GcTransaction } from './schemas.ts';
import { transactionIdAssigner } from '../transaction-ids.ts';

const DAY_MS = 86_400_000;

/** Berlin Group balance types, most preferred first: the booked (ledger) balance, then what is available. */
export const BALANCE_PREFERENCE = ['interimBooked', 'closingBooked', 'interimAvailable', 'expected', 'openingBooked', 'forwardAvailable'];

export function pickBalance(balances: readonly GcBalance[]): GcBalance | undefined {
  return BALANCE_PREFERENCE.map((t) => balances.find((b) => b.balanceType === t)).find((b) => b !== undefined) ?? balances[0];
}

/**
 * How fresh a balance is (SPEC §5): its `referenceDate` when that is a day before `now` (a
 * closing balance of an earlier day: the end of that day), else null (the retrieval time).
 * `lastChangeDateTime` says when the balance last moved (when the customer last transacted), not
 * how fresh the data is, so it is never used.
 */
export function balanceAsOf(balance: GcBalance | undefined, now: Date): Date | null {
  const day = balance?.referenceDate;
  if (day === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(day)) return null;
  const start = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(start)) return null;
  const today = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
  return start < today ? new Date(start + DAY_MS - 1) : null;
}

const MONEYHUB_TYPE: Record<string, string> = { CACC: 'cash:current', TRAN: 'cash:current', CASH: 'cash:current', SVGS: 'savings', CARD: 'card', LOAN: 'loan' };

/**
 * The account id Mooring keys an account by: its IBAN (or BBAN, or the bank's own resource id),
 * which stay the same across requisitions, so a reauth keeps the connection's accountIds; the
 * GoCardless account id (new with each requisition) only when the bank gives none of those.
 */
export function stableAccountId(meta: GcAccountMetadata, details: GcAccountDetails | undefined): string {
  const iban = details?.iban ?? meta.iban ?? undefined;
  if (iban !== undefined && iban !== null && iban !== '') return `iban:${iban.replace(/\s+/g, '').toUpperCase()}`;
  const bban = details?.bban ?? meta.bban ?? undefined;
  if (bban !== undefined && bban !== null && bban !== '') return `bban:${bban.replace(/\s+/g, '')}`;
  if (details?.resourceId !== undefined && details.resourceId !== '') return `resource:${details.resourceId}`;
  return meta.id;
}

export function toProviderAccount(
  meta: GcAccountMetadata, details: GcAccountDetails | undefined, balances: readonly GcBalance[] | undefined, fallbackCurrency: string, now: Date,
): ProviderAccount {
  const balance = balances === undefined ? undefined : pickBalance(balances);
  if (balances !== undefined && balance === undefined) throw new ResponseShapeFailure('an account has no balance');
  const currency = balance?.balanceAmount.currency ?? details?.currency ?? fallbackCurrency;
  const identification = details?.iban ?? meta.iban ?? details?.bban ?? meta.bban ?? details?.scan ?? null;
  const digits = identification === null ? '' : identification.replace(/\D/g, '');
  return {
    providerAccountId: stableAccountId(meta, details),
    accountName: details?.name ?? details?.displayName ?? details?.product ?? meta.name ?? 'Account',
    type: MONEYHUB_TYPE[details?.cashAccountType ?? ''] ?? 'cash:current',
    accountType: details?.usage === 'ORGA' ? 'business' : 'personal',
    currency,
    balanceMinor: balance === undefined ? 0 : decimalToMinor(balance.balanceAmount.amount, balance.balanceAmount.currency),
    balanceDate: balanceAsOf(balance, now) ?? now,
    providerReference: meta.id,
    ...(digits.length >= 4 ? { accountReference: digits.slice(-4) } : {}),
  };
}

const dateOf = (t: GcTransaction, now: Date): Date => {
  for (const v of [t.bookingDateTime, t.bookingDate, t.valueDateTime, t.valueDate]) {
    if (v === undefined) continue;
    const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
    if (!Number.isNaN(d.getTime())) return d;
  }
  return now;
};

const descriptionOf = (t: GcTransaction): string =>
  t.remittanceInformationUnstructured ?? t.remittanceInformationUnstructuredArray?.join(' ') ?? t.creditorName ?? t.debtorName ?? t.additionalInformation ?? 'Transaction';

/**
 * Booked → posted, pending → pending. The id is the upstream's transactionId, else its
 * internalTransactionId, else a hash of the stable fields (date, amount, currency, description),
 * numbered when two such transactions are identical.
 */
export function toProviderTransactions(accountId: string, booked: readonly GcTransaction[], pending: readonly GcTransaction[], now: Date): ProviderTransaction[] {
  const out: ProviderTransaction[] = [];
  const idOf = transactionIdAssigner('gc');
  const add = (t: GcTransaction, status: 'posted' | 'pending'): void => {
    const date = dateOf(t, now);
    const long = descriptionOf(t);
    const given = t.transactionId ?? t.internalTransactionId;
    const id = idOf(given === '' ? undefined : given, [status, accountId, date.toISOString().slice(0, 10), t.transactionAmount.amount, t.transactionAmount.currency, long]);
    if (id === undefined) return;
    out.push({
      providerAccountId: accountId,
      providerTransactionId: id,
      amountMinor: decimalToMinor(t.transactionAmount.amount, t.transactionAmount.currency),
      currency: t.transactionAmount.currency,
      date,
      status,
      shortDescription: (t.creditorName ?? t.debtorName ?? long).slice(0, 60),
      longDescription: long,
    });
  };
  for (const t of booked) add(t, 'posted');
  for (const t of pending) add(t, 'pending');
  return out;
}

/** GoCardless's error body (ErrorResponse), as far as it can be read. */
export function errorBodyOf(body: unknown): { summary: string; detail: string; type: string } {
  const b = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const text = (v: unknown): string => (typeof v === 'string' ? v : Array.isArray(v) ? v.filter((x) => typeof x === 'string').join(' ') : '');
  return { summary: text(b.summary), detail: text(b.detail), type: text(b.type) };
}

export const isInvalidToken = (status: number, body: unknown): boolean => status === 401 && /invalid token/i.test(errorBodyOf(body).summary);
export const isAgreementExpired = (body: unknown): boolean => /end user agreement.*expired/i.test(errorBodyOf(body).summary);

/** GoCardless's error bodies → ProviderError kinds (GC-ZD-ERR, GC-ZD-SUSP, Actual Budget's handling). */
export function classifierFor(providerName: string): FailureClassifier {
  return (f) => {
    const { summary, type } = errorBodyOf(f.body);
    if (f.status === 409 || /account suspended/i.test(summary)) {
      return { kind: 'credentials', detail: `${providerName} suspended access to this connection's accounts after repeated errors; the user must authorise again` };
    }
    if (f.status === 401 && isAgreementExpired(f.body)) {
      return { kind: 'consent_expired', detail: `This connection's agreement with ${providerName} has expired; the user must authorise again` };
    }
    if (f.status === 401 && type === 'AccessExpiredError') {
      return { kind: 'credentials', detail: `Access to this connection's accounts at ${providerName} has expired or was withdrawn by the user; the user must authorise again` };
    }
    if (f.status === 401 && isInvalidToken(f.status, f.body)) {
      return { kind: 'unavailable', detail: `${providerName} refused Mooring's access token; the operator must check this provider's secretId and secretKey` };
    }
    if (f.status === 429) return 'rate_limited';
    if (f.status === 503 || type === 'ServiceError') return { kind: 'unavailable', detail: `${providerName} reports that the bank is temporarily unavailable` };
    return undefined;
  };
}

/**
 * What a requisition's status says (GC-STATUS; SPEC §10): LN is fine (undefined); EX is an expired
 * agreement (consent expired) and SU a suspension (the user must authorise again); RJ a rejected journey; any other
 * status a journey the user has not finished.
 */
export function requisitionProblem(providerName: string, status: string): ProviderError | undefined {
  switch (status) {
    case 'LN':
      return undefined;
    case 'EX':
      return new ProviderError('consent_expired', `This connection's agreement with ${providerName} has expired (requisition EX); the user must authorise again`);
    case 'SU':
      return new ProviderError('credentials', `${providerName} suspended this connection (requisition SU); the user must authorise again`);
    case 'RJ':
      return new ProviderError('journey_rejected', `The authorisation was rejected at ${providerName} (requisition RJ: wrong credentials or a failed check)`);
    default:
      return new ProviderError('journey_rejected', `The authorisation at ${providerName} was not finished (requisition ${status}); start again`);
  }
}

/** What an account's own status says about a refused or unusable account (GC-STATUS). */
export function accountProblem(providerName: string, status: string | undefined): ProviderError | undefined {
  if (status === 'SUSPENDED') return new ProviderError('credentials', `${providerName} suspended access to this connection's accounts after repeated errors; the user must authorise again`);
  if (status === 'EXPIRED') return new ProviderError('consent_expired', `This connection's agreement with ${providerName} has expired; the user must authorise again`);
  return undefined;
}

/**
 * The error GoCardless names in the callback (`error`, `details`): the user cancelled, or a technical
 * failure. The browser brought it (`fromCallback`), so it never counts against GoCardless's health.
 */
export function callbackProblem(providerName: string, error: string): ProviderError {
  if (/technical/i.test(error)) return new ProviderError('unavailable', `${providerName} could not complete the authorisation (${error.slice(0, 60)})`, { fromCallback: true });
  return new ProviderError('journey_rejected', `The authorisation was cancelled or declined at ${providerName}`, { fromCallback: true });
}
