/**
 * The GoCardless sandbox counterpart's fixed facts and pure rules: its secret pair and
 * institutions, what each sandbox username makes it do, its per-account daily limit, and its
 * account, balance and transaction bodies (GoCardless's field names, amounts as signed decimal
 * strings, limits as strings), drawn from the shared generator (generator.ts).
 */
import { createHash } from 'node:crypto';
import { DAY_MS } from '../../time.ts';
import { SANDBOX_USERNAMES, syncOutcome } from './behaviours.ts';
import { customerSeed, decimalAmount, sandboxAccounts, sandboxBalanceMinor, sandboxTransactions, type SandboxAccount } from './generator.ts';

/** The secret pair the sandbox counterpart accepts (what an operator puts in a providers-file entry pointing at it). */
export const SANDBOX_GC_SECRET_ID = 'mooring-sandbox-secret-id';
export const SANDBOX_GC_SECRET_KEY = 'mooring-sandbox-secret-key';
/** GoCardless's token lifetimes (GC-QS: 24 hours and 30 days). */
export const ACCESS_EXPIRES_S = 86_400;
export const REFRESH_EXPIRES_S = 2_592_000;

export interface SandboxInstitution {
  id: string;
  name: string;
  bic: string;
  transactionTotalDays: number;
  maxAccessValidForDays: number;
}

/** GoCardless's own sandbox institution, and a stricter one (90 days of access, 730 of history). */
export const GC_INSTITUTIONS: readonly SandboxInstitution[] = [
  { id: 'SANDBOXFINANCE_SFIN0000', name: 'Sandbox Finance', bic: 'SFIN0000', transactionTotalDays: 90, maxAccessValidForDays: 180 },
  { id: 'MOORING_STRICT_MSTR0000', name: 'Mooring Strict Bank', bic: 'MSTR0000', transactionTotalDays: 730, maxAccessValidForDays: 90 },
];

export const institutionById = (id: string): SandboxInstitution | undefined => GC_INSTITUTIONS.find((i) => i.id === id);

export const institutionJson = (i: SandboxInstitution) => ({
  id: i.id, name: i.name, bic: i.bic,
  transaction_total_days: String(i.transactionTotalDays), max_access_valid_for_days: String(i.maxAccessValidForDays),
  max_access_valid_for_days_reconfirmation: '0', countries: ['GB'], logo: 'https://cdn-logos.gocardless.com/ais/SANDBOXFINANCE_SFIN0000.png',
  supported_features: ['access_scopes', 'pending_transactions'], identification_codes: [],
});

/** The usernames of the consent page: Mooring's sandbox names, plus what GoCardless adds. */
export const GC_SANDBOX_USERNAMES = [
  ...SANDBOX_USERNAMES.filter((u) => u !== 'user_mfa' && u !== 'user_throttled'),
  /** From the second sync on, 409 "Account suspended" (requisition SU, account SUSPENDED). */
  'user_suspended',
  /** From the second sync on, 503 ServiceError (the bank is down). */
  'user_outage',
  /** The bank rejects the login: the requisition ends RJ. */
  'user_rejected',
  /** The user leaves the bank without finishing: the requisition stays UA. */
  'user_unfinished',
] as const;

export const gcBehaviourFor = (username: string): string => {
  const u = username.trim().toLowerCase();
  return (GC_SANDBOX_USERNAMES as readonly string[]).includes(u) ? u : 'user_ok';
};

export type GcOutcome = 'ok' | 'partial' | 'provider_error' | 'revoked' | 'rate_limited' | 'suspended' | 'outage' | 'expired';

/** What the counterpart does with sync number `n` of a requisition with this behaviour. */
export function gcSyncOutcome(behaviour: string | null, n: number): GcOutcome {
  if (behaviour === 'user_suspended') return n >= 2 ? 'suspended' : 'ok';
  if (behaviour === 'user_outage') return n >= 2 ? 'outage' : 'ok';
  const o = syncOutcome(behaviour, n, false);
  return o === 'mfa_required' ? 'ok' : o;
}

/** Successful calls allowed per account and scope in any 24 hours (GC-ZD-RL: "four requests per day per account for each access scope"). */
export const ACCOUNT_SUCCESS_LIMIT = 4;
export const ACCOUNT_WINDOW_MS = DAY_MS;

/** The per-account limit after `calls` (successful calls in the window, oldest first) at `now`: remaining and seconds to the reset. */
export function accountLimit(calls: readonly Date[], now: Date): { remaining: number; resetSeconds: number } {
  const oldest = calls[0];
  return {
    remaining: Math.max(0, ACCOUNT_SUCCESS_LIMIT - calls.length),
    resetSeconds: oldest === undefined ? ACCOUNT_WINDOW_MS / 1000 : Math.max(1, Math.ceil((oldest.getTime() + ACCOUNT_WINDOW_MS - now.getTime()) / 1000)),
  };
}

/** A GB IBAN with correct check digits (ISO 13616 mod 97) for a sort code and account number. */
export function sandboxIban(bankCode: string, sortCode: string, accountNumber: string): string {
  const bban = `${bankCode}${sortCode}${accountNumber}`;
  const numeric = `${bban}GB00`.replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  let rem = 0;
  for (const d of numeric) rem = (rem * 10 + Number(d)) % 97;
  return `GB${String(98 - rem).padStart(2, '0')}${bban}`;
}

/** A GoCardless account id for the requisition's account at `position` (UUID-shaped; new with each requisition, as GoCardless's are). */
export function gcAccountId(requisitionId: string, position: number): string {
  const h = createHash('sha256').update(`${requisitionId}|${position}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface GcCustomer {
  seed: string;
  accounts: [SandboxAccount, SandboxAccount];
}

/** The customer behind a requisition: the same username at the same institution is the same customer (same IBANs). */
export const gcCustomer = (institutionId: string, username: string): GcCustomer => {
  const seed = customerSeed(`gocardless:${institutionId}`, username);
  return { seed, accounts: sandboxAccounts(seed, ['current', 'savings']) };
};

const day = (d: Date): string => d.toISOString().slice(0, 10);

export function accountMetadataJson(id: string, c: GcCustomer, position: number, institution: SandboxInstitution, status: string, created: Date, now: Date) {
  const a = c.accounts[position] ?? c.accounts[0];
  return {
    id, created: created.toISOString(), last_accessed: now.toISOString(), iban: sandboxIban(institution.bic.slice(0, 4), a.sortCode, a.accountNumber),
    institution_id: institution.id, status, owner_name: 'Sandbox Customer', name: a.name,
  };
}

export function accountDetailsJson(c: GcCustomer, position: number, institution: SandboxInstitution) {
  const a = c.accounts[position] ?? c.accounts[0];
  return {
    account: {
      resourceId: `${institution.bic}-${a.id}`, iban: sandboxIban(institution.bic.slice(0, 4), a.sortCode, a.accountNumber), currency: 'GBP',
      ownerName: 'Sandbox Customer', name: a.name, product: a.kind === 'savings' ? 'Instant Saver' : 'Current Account',
      cashAccountType: a.kind === 'savings' ? 'SVGS' : 'CACC', usage: 'PRIV',
    },
  };
}

/** Balances as of `asOf`: interim booked and available (that day), closing booked (the day before). */
export function balancesJson(c: GcCustomer, position: number, asOf: Date) {
  const a = c.accounts[position] ?? c.accounts[0];
  const now = sandboxBalanceMinor(c.seed, c.accounts, a, asOf);
  const yesterday = sandboxBalanceMinor(c.seed, c.accounts, a, new Date(Math.floor(asOf.getTime() / DAY_MS) * DAY_MS - 1));
  const amount = (minor: number) => ({ amount: decimalAmount(minor), currency: 'GBP' });
  return {
    balances: [
      { balanceAmount: amount(now), balanceType: 'interimAvailable', creditLimitIncluded: false, referenceDate: day(asOf) },
      { balanceAmount: amount(now), balanceType: 'interimBooked', referenceDate: day(asOf), lastChangeDateTime: asOf.toISOString() },
      { balanceAmount: amount(yesterday), balanceType: 'closingBooked', referenceDate: day(new Date(asOf.getTime() - DAY_MS)) },
    ],
  };
}

/** Booked transactions in the window (GoCardless's shape), and for the current account one pending card payment without ids. */
export function transactionsJson(c: GcCustomer, position: number, w: { linkedAt: Date; asOf: Date; from: Date | null; to: Date | null; now: Date }) {
  const a = c.accounts[position] ?? c.accounts[0];
  const booked = sandboxTransactions(c.seed, c.accounts, { authorisedAt: w.linkedAt, asOf: w.asOf, from: w.from, to: w.to }, a.id).reverse().map((t) => ({
    transactionId: t.id,
    internalTransactionId: createHash('sha256').update(`internal|${t.id}`).digest('hex').slice(0, 32),
    bookingDate: day(t.bookedAt), valueDate: day(t.bookedAt), bookingDateTime: t.bookedAt.toISOString(),
    transactionAmount: { amount: decimalAmount(t.amountMinor), currency: 'GBP' },
    ...(t.amountMinor < 0 ? { creditorName: t.description } : { debtorName: t.description }),
    remittanceInformationUnstructured: t.description,
  }));
  const pending = a.kind === 'current' ? [{ transactionAmount: { amount: '-4.20', currency: 'GBP' }, valueDate: day(w.now), remittanceInformationUnstructured: 'Card payment pending: Costa Coffee' }] : [];
  return { transactions: { booked, pending }, last_updated: w.now.toISOString() };
}
