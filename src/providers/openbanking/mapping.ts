/**
 * Open Banking data → Mooring's provider data: account types, balances, transactions. Amounts become
 * integer minor units; transactions without a bank id get one derived from their content, so ids
 * stay stable across fetches either way.
 */
import { decimalToMinor, providerDate, ResponseShapeFailure } from '../http.ts';
import type { ProviderAccount, ProviderTransaction } from '../provider.ts';
import type { ObAccount, ObBalance, ObTransaction } from './schemas.ts';
import { transactionIdAssigner } from '../transaction-ids.ts';

const MONEYHUB_TYPE: Record<string, string> = {
  CurrentAccount: 'cash:current',
  EMoney: 'cash:current',
  Savings: 'savings',
  CreditCard: 'card',
  ChargeCard: 'card',
  PrePaidCard: 'card',
  Loan: 'loan',
  Mortgage: 'mortgage:repayment',
};

/** The balance types Mooring prefers, most preferred first. */
const BALANCE_PREFERENCE = ['InterimBooked', 'ClosingBooked', 'InterimAvailable', 'ClosingAvailable', 'Expected', 'OpeningBooked'];

const signed = (amount: { Amount: string; Currency: string }, indicator: 'Credit' | 'Debit'): number => {
  const minor = decimalToMinor(amount.Amount, amount.Currency);
  if (minor < 0) throw new ResponseShapeFailure('an Open Banking amount carries a sign');
  return indicator === 'Debit' && minor !== 0 ? -minor : minor;
};

/**
 * Open Banking's closed list of account subtypes has no pension or investment: a pension provider
 * (PensionBee) reports its pots as `Savings`. When the provider's catalog entry lists no savings
 * accounts but a long-term type, a `Savings` account is that type.
 */
const LONG_TERM_TYPES = ['pension', 'pension:definedBenefit', 'pension:definedContribution', 'investment'];

function moneyhubTypeOf(subType: string | undefined, providerAccountTypes: readonly string[]): string {
  const mapped = MONEYHUB_TYPE[subType ?? ''] ?? 'cash:current';
  if (mapped !== 'savings' || providerAccountTypes.includes('savings')) return mapped;
  return providerAccountTypes.find((t) => LONG_TERM_TYPES.includes(t)) ?? mapped;
}

export function toProviderAccount(account: ObAccount, balances: ObBalance[], providerAccountTypes: readonly string[] = []): ProviderAccount {
  const own = balances.filter((b) => b.AccountId === account.AccountId);
  const pool = own.length > 0 ? own : balances;
  const balance = BALANCE_PREFERENCE.map((t) => pool.find((b) => b.Type === t)).find((b) => b !== undefined) ?? pool[0];
  if (balance === undefined) throw new ResponseShapeFailure('an account has no balance');
  const identification = account.Account?.[0];
  return {
    providerAccountId: account.AccountId,
    accountName: account.Nickname ?? identification?.Name ?? account.AccountSubType ?? 'Account',
    type: moneyhubTypeOf(account.AccountSubType, providerAccountTypes),
    accountType: account.AccountType === 'Business' ? 'business' : 'personal',
    currency: account.Currency,
    balanceMinor: signed(balance.Amount, balance.CreditDebitIndicator),
    balanceDate: providerDate(balance.DateTime, 'a balance date'),
    ...(identification !== undefined && identification.Identification.length >= 4
      ? { accountReference: identification.Identification.slice(-4) }
      : {}),
  };
}

/** Maps one account's transactions; repeated ids (across pages) are kept once. */
export function toProviderTransactions(accountId: string, transactions: ObTransaction[]): ProviderTransaction[] {
  const idOf = transactionIdAssigner('ob');
  const out: ProviderTransaction[] = [];
  for (const t of transactions) {
    const amountMinor = signed(t.Amount, t.CreditDebitIndicator);
    const id = idOf(t.TransactionId, [accountId, t.BookingDateTime, t.Amount.Amount, t.Amount.Currency, t.CreditDebitIndicator, t.TransactionInformation ?? '', t.TransactionReference ?? '']);
    if (id === undefined) continue;
    const short = t.TransactionInformation ?? t.MerchantDetails?.MerchantName ?? t.TransactionReference ?? (amountMinor < 0 ? 'Payment' : 'Credit');
    out.push({
      providerAccountId: accountId,
      providerTransactionId: id,
      amountMinor,
      currency: t.Amount.Currency,
      date: providerDate(t.BookingDateTime, 'a booking date'),
      status: t.Status === 'Pending' ? 'pending' : 'posted',
      shortDescription: short,
      longDescription: [t.TransactionInformation, t.TransactionReference].filter((x) => x !== undefined && x !== '').join(' ') || short,
    });
  }
  return out;
}
