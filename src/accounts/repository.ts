/**
 * SQL for reading what syncs stored. Every query is scoped by the user and by the API client that
 * owns the user, so another client's or user's rows look exactly like rows that do not exist.
 */
import type { Queryable } from '../db/db.ts';

/** int8 and count(*) come back as strings from `pg` and as numbers or bigints from PGlite. */
export type DbInteger = string | number | bigint;

export interface AccountRow {
  id: string;
  connection_id: string;
  provider_id: string;
  account_name: string;
  type: string;
  account_type: string;
  currency: string;
  balance_minor: DbInteger;
  balance_date: Date;
  provider_reference: string | null;
  account_reference: string | null;
  updated_at: Date;
  transaction_count: DbInteger;
  earliest_date: Date | null;
  last_date: Date | null;
}

export interface TransactionRow {
  id: string;
  account_id: string;
  connection_id: string;
  provider_id: string;
  amount_minor: DbInteger;
  currency: string;
  date: Date;
  updated_at: Date;
  status: string;
  short_description: string;
  long_description: string;
  category_id: string | null;
}

export interface TransactionFilter {
  userId: string;
  clientId: string;
  accountId: string | null;
  from: Date | null;
  to: Date | null;
}

const SELECT_ACCOUNT = `
  select a.id::text as id, a.connection_id, c.provider_id, a.account_name, a.type, a.account_type, a.currency,
    a.balance_minor, a.balance_date, a.provider_reference, a.account_reference, a.updated_at,
    td.n as transaction_count, td.earliest as earliest_date, td.latest as last_date
  from accounts a
  join connections c on c.id = a.connection_id
  join users u on u.id = a.user_id and u.client_id = $2
  left join lateral (
    select count(*) as n, min(t.date) as earliest, max(t.date) as latest from transactions t where t.account_id = a.id
  ) td on true
  where a.user_id = $1`;

const SELECT_TRANSACTION = `
  select t.id::text as id, t.account_id::text as account_id, a.connection_id, c.provider_id, t.amount_minor, t.currency,
    t.date, t.updated_at, t.status, t.short_description, t.long_description, t.category_id
  from transactions t
  join accounts a on a.id = t.account_id
  join connections c on c.id = a.connection_id`;

// Optional filters are null-tolerant parameters so the statement stays one readable text; the
// user's rows are reached through transactions_user_date, which also gives the order.
const TRANSACTIONS_FILTER = `
  join users u on u.id = t.user_id and u.client_id = $2
  where t.user_id = $1
    and ($3::uuid is null or t.account_id = $3::uuid)
    and ($4::timestamptz is null or t.date >= $4::timestamptz)
    and ($5::timestamptz is null or t.date <= $5::timestamptz)`;

export function accountsRepository(db: Queryable) {
  return {
    async listAccounts(userId: string, clientId: string, limit: number, offset: number): Promise<{ rows: AccountRow[]; total: number }> {
      const [page, count] = await Promise.all([
        db.query<AccountRow>(`${SELECT_ACCOUNT} order by a.created_at, a.id limit $3 offset $4`, [userId, clientId, limit, offset]),
        db.query<{ n: DbInteger }>(
          'select count(*) as n from accounts a join users u on u.id = a.user_id and u.client_id = $2 where a.user_id = $1',
          [userId, clientId],
        ),
      ]);
      return { rows: page.rows, total: Number(count.rows[0]?.n ?? 0) };
    },

    /** `accountId` must be a UUID (the caller answers "not found" for anything else). */
    async findAccount(userId: string, clientId: string, accountId: string): Promise<AccountRow | undefined> {
      const r = await db.query<AccountRow>(`${SELECT_ACCOUNT} and a.id = $3::uuid`, [userId, clientId, accountId]);
      return r.rows[0];
    },

    /** `transactionId` must be a UUID (the caller answers "not found" for anything else). */
    async findTransaction(userId: string, clientId: string, transactionId: string): Promise<TransactionRow | undefined> {
      const r = await db.query<TransactionRow>(
        `${SELECT_TRANSACTION}
         join users u on u.id = t.user_id and u.client_id = $2
         where t.user_id = $1 and t.id = $3::uuid`,
        [userId, clientId, transactionId],
      );
      return r.rows[0];
    },

    /** Newest first; `accountId`, when given, must be a UUID. */
    async listTransactions(f: TransactionFilter, limit: number, offset: number): Promise<{ rows: TransactionRow[]; total: number }> {
      const params = [f.userId, f.clientId, f.accountId, f.from, f.to];
      const [page, count] = await Promise.all([
        db.query<TransactionRow>(
          `${SELECT_TRANSACTION}
           ${TRANSACTIONS_FILTER}
           order by t.date desc, t.id
           limit $6 offset $7`,
          [...params, limit, offset],
        ),
        db.query<{ n: DbInteger }>(`select count(*) as n from transactions t ${TRANSACTIONS_FILTER}`, params),
      ]);
      return { rows: page.rows, total: Number(count.rows[0]?.n ?? 0) };
    },
  };
}
export type AccountsRepository = ReturnType<typeof accountsRepository>;
