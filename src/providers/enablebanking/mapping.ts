/**
 * Enable Banking data → Mooring's provider data. An account's identity is its
 * `identification_hash` (stable across sessions, so a reauth keeps Mooring's account ids; `uid`
 * is valid only within one session). Amounts are unsigned decimal strings signed by
 * `credit_debit_indicator`; booked (BOOK) and pending (PDNG) transactions are kept, the others
 * (cancelled, rejected, scheduled, on hold) are not money that moved.
 */
import { decimalToMinor, providerDate, ResponseShapeFailure } from '../http.ts';
import type { ProviderAccount, ProviderTransaction } from '../provider.ts';
import type { EbAccount, EbBalance, EbTransaction } from './schemas.ts';
import { transactionIdAssigner } from '../transaction-ids.ts';

const MONEYHUB_TYPE: Record<string, string> = {
  CACC: 'cash:current',
  CASH: 'cash:current',
  SVGS: 'savings',
  CARD: 'card',
  LOAN: 'loan',
};

/** The balance types Mooring prefers, most preferred first (interim booked, interim available, closing booked, …). */
export const EB_BALANCE_PREFERENCE = ['ITBD', 'ITAV', 'CLBD', 'CLAV', 'XPCD', 'OPBD', 'OPAV', 'PRCD', 'FWAV', 'VALU', 'INFO', 'OTHR'];

const DAY_MS = 86_400_000;

/** Picks the balance Mooring reports: the first of EB_BALANCE_PREFERENCE present, else the first given. */
export function preferredBalance(balances: EbBalance[]): EbBalance {
  const b = EB_BALANCE_PREFERENCE.map((t) => balances.find((x) => x.balance_type === t)).find((x) => x !== undefined) ?? balances[0];
  if (b === undefined) throw new ResponseShapeFailure('an account has no balance');
  return b;
}

/**
 * How fresh a balance is. Enable Banking gives only the day it is for (`reference_date`;
 * `last_change_date_time` is when the customer last transacted, SPEC §5, never an as-of time): a
 * balance for an earlier day than `now` is taken as of the start of that day (the most that day
 * proves: a later time could claim data fresher than the bank served); for today (or undated), null.
 */
export function balanceAsOf(balance: EbBalance, now: Date): Date | null {
  if (balance.reference_date === undefined) return null;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(balance.reference_date)) throw new ResponseShapeFailure('a balance reference date is not a date');
  const day = providerDate(`${balance.reference_date}T00:00:00Z`, 'a balance reference date');
  return day.getTime() + DAY_MS <= now.getTime() ? day : null;
}

const lastFour = (a: EbAccount): string | undefined => {
  const id = a.account_id?.iban ?? a.account_id?.other?.identification;
  return id !== undefined && id.length >= 4 ? id.slice(-4) : undefined;
};

export function toProviderAccount(a: EbAccount, balance: EbBalance, defaultUserType: 'personal' | 'business', now: Date): ProviderAccount {
  const balanceMinor = decimalToMinor(balance.balance_amount.amount, balance.balance_amount.currency);
  const reference = lastFour(a);
  return {
    providerAccountId: a.identification_hash,
    accountName: a.details ?? a.product ?? a.name ?? 'Account',
    type: MONEYHUB_TYPE[a.cash_account_type] ?? 'cash:current',
    accountType: a.usage === 'ORGA' ? 'business' : a.usage === 'PRIV' ? 'personal' : defaultUserType,
    currency: a.currency,
    balanceMinor,
    balanceDate: balanceAsOf(balance, now) ?? now,
    ...(reference === undefined ? {} : { accountReference: reference }),
  };
}

const STATUS: Record<string, ProviderTransaction['status']> = { BOOK: 'posted', PDNG: 'pending' };

const dateOf = (t: EbTransaction): Date => {
  const raw = t.booking_date ?? t.transaction_date ?? t.value_date;
  if (raw === undefined || raw === null || !/^\d{4}-\d{2}-\d{2}/.test(raw)) throw new ResponseShapeFailure('a transaction has no date');
  return providerDate(raw.length === 10 ? `${raw}T00:00:00Z` : raw, 'a transaction date');
};

/**
 * Maps one account's transactions (`accountKey` = its identification hash). Ids: `entry_reference`
 * (unique and immutable for the account), else a hash of the transaction's stable fields with an
 * occurrence suffix for identical twins; an id repeated across pages is kept once.
 */
export function toProviderTransactions(accountKey: string, transactions: EbTransaction[]): ProviderTransaction[] {
  const idOf = transactionIdAssigner('eb');
  const out: ProviderTransaction[] = [];
  for (const t of transactions) {
    const status = STATUS[t.status];
    if (status === undefined) continue;
    const minor = decimalToMinor(t.transaction_amount.amount, t.transaction_amount.currency);
    if (minor < 0) throw new ResponseShapeFailure('an Enable Banking transaction amount carries a sign');
    const amountMinor = t.credit_debit_indicator === 'DBIT' && minor !== 0 ? -minor : minor;
    const remittance = (t.remittance_information ?? []).filter((x) => x.trim() !== '');
    const counterparty = (t.credit_debit_indicator === 'DBIT' ? t.creditor?.name : t.debtor?.name) ?? undefined;
    const date = dateOf(t);
    const id = idOf(t.entry_reference ?? undefined, [
      accountKey, status, date.toISOString(), t.transaction_amount.amount, t.transaction_amount.currency, t.credit_debit_indicator, remittance.join(' '), counterparty ?? '',
    ]);
    if (id === undefined) continue;
    const short = counterparty ?? remittance[0] ?? (amountMinor < 0 ? 'Payment' : 'Credit');
    out.push({
      providerAccountId: accountKey,
      providerTransactionId: id,
      amountMinor,
      currency: t.transaction_amount.currency,
      date,
      status,
      shortDescription: short,
      longDescription: [counterparty, ...remittance].filter((x) => x !== undefined && x !== '').join(' ') || short,
    });
  }
  return out;
}
