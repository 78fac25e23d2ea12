/**
 * Deterministic sandbox data. Everything is a pure function of a customer seed (provider + the
 * username typed at login) and domain time, so re-fetching — or re-authorising as the same
 * customer — returns the same account and transaction ids, and moving the clock brings new ones.
 *
 * Transactions sit on an absolute grid: one per UTC day, at a time of day drawn from the seed. A
 * consent sees the 30 transactions booked up to its authorisation, then every later one up to the
 * bank's as-of time.
 */
import { hash } from 'node:crypto';
import { DAY_MS, HOUR_MS } from '../../time.ts';

export const HISTORY_TRANSACTIONS = 30;
/** Balances are an opening balance on this day plus every grid transaction since. */
const BALANCE_EPOCH_DAY = Date.UTC(2024, 0, 1) / DAY_MS;
/** Valuations grow (or depreciate) month by month from this month. */
const VALUATION_EPOCH_MONTH = 2024 * 12;

export type SandboxAccountKind = 'current' | 'savings' | 'card' | 'pension' | 'investment';

export interface SandboxAccount {
  id: string;
  kind: SandboxAccountKind;
  name: string;
  sortCode: string;
  accountNumber: string;
}

export interface SandboxTransaction {
  id: string;
  accountId: string;
  amountMinor: number;
  bookedAt: Date;
  description: string;
}

/**
 * SHA-256 of the parts joined by '|', in hex. One-shot `crypto.hash` with a string result: no Hash
 * object and no Buffer per value (a balance draws one value per day of history).
 */
const digestHex = (parts: (string | number)[]): string => hash('sha256', parts.join('|'), 'hex');
/** The digest's first 4 bytes, big-endian. */
const u32 = (...parts: (string | number)[]): number => Number.parseInt(digestHex(parts).slice(0, 8), 16);
const hex = (length: number, ...parts: (string | number)[]): string => digestHex(parts).slice(0, length);
const digits = (length: number, ...parts: (string | number)[]): string =>
  String(u32(...parts) % 10 ** length).padStart(length, '0');

export const customerSeed = (providerId: string, username: string): string => `${providerId}:${username.trim().toLowerCase()}`;

const ACCOUNT_NAMES: Record<SandboxAccountKind, string> = {
  current: 'Current Account',
  savings: 'Instant Saver',
  card: 'Credit Card',
  pension: 'Personal Pension',
  investment: 'Stocks and Shares ISA',
};

/** Maps a catalog account type (Moneyhub's) to the kind of account the sandbox generates. */
export function accountKindOf(type: string): SandboxAccountKind {
  if (type === 'savings' || type === 'card' || type === 'pension' || type === 'investment') return type;
  return 'current';
}

/** Every sandbox customer has two accounts: the provider's first two account types (or two of its only one). */
export function sandboxAccounts(seed: string, kinds: SandboxAccountKind[]): [SandboxAccount, SandboxAccount] {
  const first = kinds[0] ?? 'current';
  const second = kinds[1] ?? first;
  const make = (kind: SandboxAccountKind, index: number): SandboxAccount => ({
    id: `acc-${hex(20, seed, 'account', index)}`,
    kind,
    name: index > 0 && kind === first ? `${ACCOUNT_NAMES[kind]} 2` : ACCOUNT_NAMES[kind],
    sortCode: `04${digits(4, seed, 'sort', index)}`,
    accountNumber: digits(8, seed, 'number', index),
  });
  return [make(first, 0), make(second, 1)];
}

const bookedAtMs = (seed: string, day: number): number => day * DAY_MS + 8 * HOUR_MS + (u32(seed, 'time', day) % (12 * 3600)) * 1000;

/** The grid index of the last transaction booked at or before `t`. */
function lastIndexAtOrBefore(seed: string, t: Date): number {
  const day = Math.floor(t.getTime() / DAY_MS);
  return bookedAtMs(seed, day) <= t.getTime() ? day : day - 1;
}

const MERCHANTS = ['Tesco Stores', "Sainsbury's", 'Transport for London', 'Pret A Manger', 'Amazon UK', 'Boots', 'Shell', 'Netflix', 'Waitrose', 'Costa Coffee'];

function amountAndDescription(kind: SandboxAccountKind, day: number, r: number): { amountMinor: number; description: string } {
  const merchant = MERCHANTS[r % MERCHANTS.length] ?? 'Card payment';
  switch (kind) {
    case 'current':
      return day % 30 === 0 ? { amountMinor: 245_000, description: 'Salary ACME LTD' } : { amountMinor: -(300 + (r % 12_000)), description: merchant };
    case 'card':
      return day % 30 === 0 ? { amountMinor: 80_000, description: 'Payment received, thank you' } : { amountMinor: -(300 + (r % 8_000)), description: merchant };
    case 'savings':
      return day % 30 === 29
        ? { amountMinor: -(5_000 + (r % 20_000)), description: 'Transfer to current account' }
        : { amountMinor: 1_000 + (r % 20_000), description: 'Transfer from current account' };
    case 'pension':
      return day % 30 === 29
        ? { amountMinor: -(500 + (r % 1_000)), description: 'Annual management charge' }
        : { amountMinor: 15_000 + (r % 15_000), description: r % 2 === 0 ? 'Employer contribution' : 'Employee contribution' };
    case 'investment':
      return { amountMinor: (r % 20_000) - 8_000, description: 'Fund valuation change' };
  }
}

/** The account the grid transaction of `day` belongs to: the second account every fifth day, else the first. */
function accountOn(accounts: readonly SandboxAccount[], day: number): SandboxAccount {
  const account = (day % 5 === 4 ? accounts[1] : accounts[0]) ?? accounts[0];
  if (account === undefined) throw new Error('a sandbox customer has accounts');
  return account;
}

const amountOn = (seed: string, account: SandboxAccount, day: number): { amountMinor: number; description: string } =>
  amountAndDescription(account.kind, day, u32(seed, 'amount', day));

function transactionOn(seed: string, account: SandboxAccount, day: number): SandboxTransaction {
  const { amountMinor, description } = amountOn(seed, account, day);
  return { id: `txn-${hex(24, seed, account.id, day)}`, accountId: account.id, amountMinor, bookedAt: new Date(bookedAtMs(seed, day)), description };
}

export interface TransactionWindow {
  /** When the consent was authorised: its history is the 30 transactions booked up to then. */
  authorisedAt: Date;
  /** The bank's as-of time: nothing booked later is visible. */
  asOf: Date;
  from?: Date | null;
  to?: Date | null;
}

/** The transactions of one account (or all accounts) visible through a consent, oldest first. */
export function sandboxTransactions(
  seed: string,
  accounts: readonly SandboxAccount[],
  window: TransactionWindow,
  accountId?: string,
): SandboxTransaction[] {
  const first = lastIndexAtOrBefore(seed, window.authorisedAt) - (HISTORY_TRANSACTIONS - 1);
  const last = lastIndexAtOrBefore(seed, window.asOf);
  const out: SandboxTransaction[] = [];
  for (let day = first; day <= last; day += 1) {
    const account = accountOn(accounts, day);
    if (accountId !== undefined && account.id !== accountId) continue;
    const t = transactionOn(seed, account, day);
    if (window.from && t.bookedAt < window.from) continue;
    if (window.to && t.bookedAt > window.to) continue;
    out.push(t);
  }
  return out;
}

function openingBalanceMinor(seed: string, account: SandboxAccount): number {
  const r = u32(seed, 'opening', account.id);
  switch (account.kind) {
    case 'current':
      return 150_000 + (r % 400_000);
    case 'savings':
      return 500_000 + (r % 2_000_000);
    case 'card':
      return -(r % 150_000);
    case 'pension':
      return 2_500_000 + (r % 10_000_000);
    case 'investment':
      return 1_000_000 + (r % 5_000_000);
  }
}

/**
 * Running balances already summed: per customer and account, the balance with every grid day up
 * to `day` counted. A balance is a sum over every day since BALANCE_EPOCH_DAY, one more each day,
 * so a later call only adds the days since. Bounded; the least recently used entry goes first.
 */
const BALANCE_MEMO_ENTRIES = 10_000;
const balanceMemo = new Map<string, { day: number; balanceMinor: number }>();

/**
 * The account's balance at `asOf`: consistent with every transaction the bank serves. Only the
 * amounts of this account's days are drawn (which account a day belongs to needs no hashing).
 */
export function sandboxBalanceMinor(seed: string, accounts: readonly SandboxAccount[], account: SandboxAccount, asOf: Date): number {
  const last = lastIndexAtOrBefore(seed, asOf);
  // Everything the sum depends on: the customer, the account, and which account owns each day.
  const key = JSON.stringify([seed, account.id, account.kind, ...accounts.slice(0, 2).map((a) => [a.id, a.kind])]);
  const memo = balanceMemo.get(key);
  const from = memo !== undefined && memo.day <= last ? memo : { day: BALANCE_EPOCH_DAY, balanceMinor: openingBalanceMinor(seed, account) };
  let balance = from.balanceMinor;
  for (let day = Math.max(from.day, BALANCE_EPOCH_DAY) + 1; day <= last; day += 1) {
    const owner = accountOn(accounts, day);
    if (owner.id === account.id) balance += amountOn(seed, owner, day).amountMinor;
  }
  if (memo === undefined || memo.day <= last) {
    balanceMemo.delete(key);
    balanceMemo.set(key, { day: Math.max(last, BALANCE_EPOCH_DAY), balanceMinor: balance });
    if (balanceMemo.size > BALANCE_MEMO_ENTRIES) balanceMemo.delete(balanceMemo.keys().next().value as string);
  }
  return balance;
}

export const monthIndexOf = (d: Date): number => d.getUTCFullYear() * 12 + d.getUTCMonth();
export const monthStart = (month: number): Date => new Date(Date.UTC(Math.floor(month / 12), month % 12, 1));

/** A property's value in `month` (pence, to the nearest £1,000): £150k–£900k, growing about 0.3% a month. */
export function propertyValueMinor(seed: string, month: number): number {
  const base = 15_000_000 + (u32(seed, 'property') % 75_000_000);
  const noise = 1 + ((u32(seed, 'month', month) % 200) - 100) / 10_000;
  return Math.round((base * 1.003 ** (month - VALUATION_EPOCH_MONTH) * noise) / 100_000) * 100_000;
}

/** A vehicle's value in `month` (pence, to the nearest £50): £5k–£40k, losing about 1.5% a month. */
export function vehicleValueMinor(seed: string, month: number): number {
  const base = 500_000 + (u32(seed, 'vehicle') % 3_500_000);
  const noise = 1 + ((u32(seed, 'month', month) % 100) - 50) / 10_000;
  return Math.round((base * 0.985 ** (month - VALUATION_EPOCH_MONTH) * noise) / 5_000) * 5_000;
}

/** Formats minor units as a decimal amount string, as providers send money ("-12.30"). */
export function decimalAmount(minor: number): string {
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}
