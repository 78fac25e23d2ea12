/**
 * SQL for accounts and transactions: the reads of the API and the writes of a finished sync. Every
 * read is scoped by the user and by the API client that owns the user, so another client's or
 * user's rows look exactly like rows that do not exist.
 */
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../db/db.ts';
import type { ProviderAccount, ProviderTransaction } from '../providers/provider.ts';

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

    /** Upserts accounts; answers Mooring's account id for each provider account id. */
    async upsertAccounts(connectionId: string, userId: string, accounts: ProviderAccount[], now: Date): Promise<Map<string, string>> {
      const ids = new Map<string, string>();
      if (accounts.length === 0) return ids;
      const rows = accounts.map((a) => ({
        id: randomUUID(),
        provider_account_id: a.providerAccountId,
        account_name: a.accountName,
        type: a.type,
        account_type: a.accountType,
        currency: a.currency,
        balance_minor: a.balanceMinor,
        balance_date: a.balanceDate.toISOString(),
        provider_reference: a.providerReference ?? null,
        account_reference: a.accountReference ?? null,
        details: a.details ?? {},
      }));
      const r = await db.query<{ id: string; provider_account_id: string }>(
        `insert into accounts (id, connection_id, user_id, provider_account_id, account_name, type, account_type, currency,
            balance_minor, balance_date, provider_reference, account_reference, details, created_at, updated_at)
         select x.id, $2, $3, x.provider_account_id, x.account_name, x.type, x.account_type, x.currency,
            x.balance_minor, x.balance_date, x.provider_reference, x.account_reference, x.details, $4, $4
         from jsonb_to_recordset($1::jsonb) as x(id uuid, provider_account_id text, account_name text, type text, account_type text,
            currency text, balance_minor bigint, balance_date timestamptz, provider_reference text, account_reference text, details jsonb)
         on conflict (connection_id, provider_account_id) do update set
            account_name = excluded.account_name, type = excluded.type, account_type = excluded.account_type,
            currency = excluded.currency, balance_minor = excluded.balance_minor, balance_date = excluded.balance_date,
            provider_reference = excluded.provider_reference, account_reference = excluded.account_reference,
            details = excluded.details, updated_at = excluded.updated_at
         returning id::text as id, provider_account_id`,
        [JSON.stringify(rows), connectionId, userId, now],
      );
      for (const row of r.rows) ids.set(row.provider_account_id, row.id);
      return ids;
    },

    /** Upserts transactions; a re-fetched transaction never duplicates, and only real changes count as updates. */
    async upsertTransactions(userId: string, accountIds: Map<string, string>, txs: ProviderTransaction[], now: Date): Promise<{ added: number; updated: number; addedIds: { accountId: string; transactionId: string }[] }> {
      const rows = txs
        .filter((t) => accountIds.has(t.providerAccountId))
        .map((t) => ({
          id: randomUUID(),
          account_id: accountIds.get(t.providerAccountId),
          provider_transaction_id: t.providerTransactionId,
          amount_minor: t.amountMinor,
          currency: t.currency,
          date: t.date.toISOString(),
          status: t.status,
          short_description: t.shortDescription,
          long_description: t.longDescription,
        }));
      if (rows.length === 0) return { added: 0, updated: 0, addedIds: [] };
      const r = await db.query<{ inserted: boolean; id: string; account_id: string }>(
        `insert into transactions (id, account_id, user_id, provider_transaction_id, amount_minor, currency, date, status,
            short_description, long_description, created_at, updated_at)
         select x.id, x.account_id, $2, x.provider_transaction_id, x.amount_minor, x.currency, x.date, x.status,
            x.short_description, x.long_description, $3, $3
         from jsonb_to_recordset($1::jsonb) as x(id uuid, account_id uuid, provider_transaction_id text, amount_minor bigint,
            currency text, date timestamptz, status text, short_description text, long_description text)
         on conflict (account_id, provider_transaction_id) do update set
            amount_minor = excluded.amount_minor, currency = excluded.currency, date = excluded.date, status = excluded.status,
            short_description = excluded.short_description, long_description = excluded.long_description, updated_at = excluded.updated_at
         where (transactions.amount_minor, transactions.currency, transactions.date, transactions.status, transactions.short_description, transactions.long_description)
            is distinct from (excluded.amount_minor, excluded.currency, excluded.date, excluded.status, excluded.short_description, excluded.long_description)
         returning (xmax = 0) as inserted, id::text as id, account_id::text as account_id`,
        [JSON.stringify(rows), userId, now],
      );
      const inserted = r.rows.filter((x) => x.inserted);
      return { added: inserted.length, updated: r.rows.length - inserted.length, addedIds: inserted.map((x) => ({ accountId: x.account_id, transactionId: x.id })) };
    },
  };
}
export type AccountsRepository = ReturnType<typeof accountsRepository>;
