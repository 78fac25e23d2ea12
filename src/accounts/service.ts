/** Accounts and transactions as a user's token sees them, shaped as Moneyhub sends them. */
import { notFound } from '../errors.ts';
import type { Page } from '../http/schemas.ts';
import type { Catalog } from '../providers/catalog.ts';
import { parseDateRange } from './date-range.ts';
import type { AccountRow, AccountsRepository, DbInteger, TransactionRow } from './repository.ts';
import { TRANSACTION_STATUSES, type AccountJson, type TransactionJson, type TransactionStatus } from './schemas.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const toInteger = (v: DbInteger): number => Number(v);

const statusOf = (s: string): TransactionStatus => TRANSACTION_STATUSES.find((x) => x === s) ?? 'posted';

export function toAccountJson(row: AccountRow, catalog: Catalog): AccountJson {
  const providerName = catalog.get(row.provider_id)?.name;
  const count = toInteger(row.transaction_count);
  return {
    id: row.id,
    accountName: row.account_name,
    type: row.type,
    accountType: row.account_type === 'business' ? 'business' : 'personal',
    currency: row.currency,
    balance: { amount: { value: toInteger(row.balance_minor), currency: row.currency }, date: row.balance_date.toISOString() },
    dateModified: row.updated_at.toISOString(),
    ...(providerName !== undefined ? { providerName } : {}),
    ...(row.provider_reference !== null ? { providerReference: row.provider_reference } : {}),
    providerId: row.provider_id,
    connectionId: row.connection_id,
    ...(row.account_reference !== null ? { accountReference: row.account_reference } : {}),
    transactionData: {
      count,
      ...(row.earliest_date !== null ? { earliestDate: row.earliest_date.toISOString() } : {}),
      ...(row.last_date !== null ? { lastDate: row.last_date.toISOString() } : {}),
    },
  };
}

export function toTransactionJson(row: TransactionRow): TransactionJson {
  return {
    id: row.id,
    accountId: row.account_id,
    connectionId: row.connection_id,
    providerId: row.provider_id,
    amount: { value: toInteger(row.amount_minor), currency: row.currency },
    date: row.date.toISOString(),
    dateModified: row.updated_at.toISOString(),
    shortDescription: row.short_description,
    longDescription: row.long_description,
    notes: '',
    status: statusOf(row.status),
    ...(row.category_id !== null ? { categoryId: row.category_id } : {}),
    categoryIdConfirmed: false,
  };
}

export interface TransactionsQuery {
  accountId?: string;
  startDate?: string;
  endDate?: string;
}

export function accountsService(deps: { accounts: AccountsRepository; catalog: Catalog }) {
  return {
    async list(clientId: string, userId: string, page: Page): Promise<{ accounts: AccountJson[]; total: number }> {
      const { rows, total } = await deps.accounts.listAccounts(userId, clientId, page.limit, page.offset);
      return { accounts: rows.map((r) => toAccountJson(r, deps.catalog)), total };
    },

    async get(clientId: string, userId: string, accountId: string): Promise<AccountJson> {
      const row = UUID.test(accountId) ? await deps.accounts.findAccount(userId, clientId, accountId) : undefined;
      if (row === undefined) throw notFound('Account');
      return toAccountJson(row, deps.catalog);
    },

    async transaction(clientId: string, userId: string, transactionId: string): Promise<TransactionJson> {
      const row = UUID.test(transactionId) ? await deps.accounts.findTransaction(userId, clientId, transactionId) : undefined;
      if (row === undefined) throw notFound('Transaction');
      return toTransactionJson(row);
    },

    /** Bad dates are a 400; an account id that is not one of the user's simply matches nothing. */
    async transactions(clientId: string, userId: string, q: TransactionsQuery, page: Page): Promise<{ transactions: TransactionJson[]; total: number }> {
      const { from, to } = parseDateRange(q);
      if (q.accountId !== undefined && !UUID.test(q.accountId)) return { transactions: [], total: 0 };
      const { rows, total } = await deps.accounts.listTransactions({ userId, clientId, accountId: q.accountId ?? null, from, to }, page.limit, page.offset);
      return { transactions: rows.map(toTransactionJson), total };
    },
  };
}
export type AccountsService = ReturnType<typeof accountsService>;
