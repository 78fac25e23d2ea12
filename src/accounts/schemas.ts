/** Accounts and transactions in Moneyhub's shapes (the official client's `Account` and `Transaction`). */
import { Type, type Static } from 'typebox';
import { DateTime, literals, Pagination } from '../http/schemas.ts';

export const TRANSACTION_STATUSES = ['posted', 'pending'] as const;
export type TransactionStatus = (typeof TRANSACTION_STATUSES)[number];

export const ACCOUNT_HOLDER_TYPES = ['personal', 'business'] as const;

/** Money as Moneyhub sends it: `value` in the currency's minor units (pence for GBP). */
export const Amount = Type.Object({
  value: Type.Integer({ description: 'Amount in minor units (e.g. pence)' }),
  currency: Type.String({ description: 'ISO 4217 currency code' }),
});

export const Account = Type.Object(
  {
    id: Type.String(),
    accountName: Type.String(),
    type: Type.String({ description: 'Moneyhub account type, e.g. cash:current, savings, card' }),
    accountType: literals(ACCOUNT_HOLDER_TYPES),
    currency: Type.String(),
    balance: Type.Object({ amount: Amount, date: DateTime }),
    dateModified: DateTime,
    providerName: Type.Optional(Type.String()),
    providerReference: Type.Optional(Type.String()),
    providerId: Type.String({ description: 'Catalog id of the provider' }),
    connectionId: Type.String(),
    accountReference: Type.Optional(Type.String()),
    transactionData: Type.Object({
      count: Type.Integer({ minimum: 0 }),
      earliestDate: Type.Optional(DateTime),
      lastDate: Type.Optional(DateTime),
    }),
  },
  { $id: 'Account' },
);
export type AccountJson = Static<typeof Account>;

export const Transaction = Type.Object(
  {
    id: Type.String(),
    accountId: Type.String(),
    connectionId: Type.String(),
    providerId: Type.String(),
    amount: Amount,
    date: DateTime,
    dateModified: DateTime,
    shortDescription: Type.String(),
    longDescription: Type.String(),
    notes: Type.String(),
    status: literals(TRANSACTION_STATUSES),
    categoryId: Type.Optional(Type.String()),
    categoryIdConfirmed: Type.Boolean(),
  },
  { $id: 'Transaction' },
);
export type TransactionJson = Static<typeof Transaction>;

export const AccountParams = Type.Object({ accountId: Type.String({ description: 'Account id (anything that is not one of the user\'s accounts is a 404)' }) });

export const TransactionParams = Type.Object({ transactionId: Type.String({ description: 'Transaction id (anything that is not one of the user\'s transactions is a 404)' }) });

const DATE_BOUND = 'A date (YYYY-MM-DD, the whole day) or an ISO 8601 date-time; inclusive';

export const TransactionsQuery = Type.Object({
  ...Pagination.properties,
  accountId: Type.Optional(Type.String({ description: 'Only transactions of this account (another account id matches nothing)' })),
  startDate: Type.Optional(Type.String({ maxLength: 40, description: `Earliest date. ${DATE_BOUND}` })),
  endDate: Type.Optional(Type.String({ maxLength: 40, description: `Latest date. ${DATE_BOUND}` })),
});
export type TransactionsQueryJson = Static<typeof TransactionsQuery>;
