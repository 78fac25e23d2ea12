/**
 * GET /v2.0/accounts, /v2.0/accounts/:id and /v2.0/transactions through the official Moneyhub
 * client, after a real connect journey to Modelo as user_ok (two accounts, thirty transactions).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.ts';
import { accessToken, ALL_API_SCOPES, apiClient, call, connectBank, MODELO_ID, type ApiClient } from '../helpers/api.ts';
import { rejection } from '../helpers/moneyhub.ts';

const NO_ACCOUNT = '00000000-0000-4000-8000-000000000000';

interface Account {
  id: string;
  accountName: string;
  type: string;
  accountType: string;
  currency: string;
  balance: { amount: { value: number; currency: string }; date: string };
  dateModified: string;
  providerName: string;
  providerId: string;
  connectionId: string;
  transactionData: { count: number; earliestDate?: string; lastDate?: string };
}

interface Transaction {
  id: string;
  accountId: string;
  connectionId: string;
  amount: { value: number; currency: string };
  date: string;
  dateModified: string;
  shortDescription: string;
  longDescription: string;
  status: string;
}

interface List<T> {
  data: T[];
  links: { self: string; next?: string; prev?: string };
  meta: { total: number };
}


const day = (iso: string): string => iso.slice(0, 10);

describe('accounts and transactions (resource server)', () => {
  let ts: TestServer;
  let a: ApiClient;
  let userId: string;
  let connectionId: string;
  let accounts: Account[];
  let transactions: Transaction[];

  const getAccounts = async (params: Record<string, number> = {}) =>
    (await a.mh.getAccounts({ userId, params })) as unknown as List<Account>;
  const getTransactions = async (params: Record<string, string | number> = {}, user = userId) =>
    (await a.mh.getTransactions({ userId: user, params })) as unknown as List<Transaction>;

  beforeAll(async () => {
    ts = await startTestServer();
    a = await apiClient(ts.baseUrl);
    userId = (await a.mh.registerUser({ clientUserId: 'accounts-user' })).userId;
    connectionId = await connectBank(a, userId);
  });
  afterAll(async () => ts.stop());

  it("lists the connection's two accounts in Moneyhub's shape, with provider names from the catalog", async () => {
    const list = await getAccounts();
    accounts = list.data;
    expect(accounts).toHaveLength(2);
    expect(list.meta.total).toBe(2);
    expect(list.links.self).toBe(`${ts.baseUrl}/v2.0/accounts?limit=100&offset=0`);
    expect(list.links.next).toBeUndefined();
    for (const acc of accounts) {
      expect(acc.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(acc).toMatchObject({ providerName: 'Modelo Open Banking Mock', providerId: MODELO_ID, connectionId, currency: 'GBP', accountType: 'personal' });
      expect(['cash:current', 'savings', 'card']).toContain(acc.type);
      expect(Number.isInteger(acc.balance.amount.value)).toBe(true);
      expect(acc.balance.amount.currency).toBe('GBP');
      expect(Number.isNaN(Date.parse(acc.balance.date))).toBe(false);
      expect(Number.isNaN(Date.parse(acc.dateModified))).toBe(false);
      expect(acc.transactionData.count).toBeGreaterThan(0);
      expect(acc).not.toHaveProperty('transactionData.lastDatE');
    }
    expect(accounts.map((x) => x.accountName).sort()).toEqual(['Current Account', 'Instant Saver']);
    expect(accounts.reduce((n, x) => n + x.transactionData.count, 0)).toBe(30);

    const { data: connections } = await a.mh.getUserConnections({ userId });
    // The same ids, in the same order, as the connection lists.
    expect(connections[0]?.accountIds).toEqual(accounts.map((x) => x.id));
  });

  it('gets one account by id, identical to its entry in the list', async () => {
    for (const acc of accounts) {
      const { data } = await a.mh.getAccount({ userId, accountId: acc.id });
      expect(data).toEqual(acc);
    }
  });

  it('serves getAccountsList: the same accounts, paged the same way', async () => {
    const list = (await a.mh.getAccountsList({ userId })) as unknown as List<Account>;
    expect(list.data).toEqual(accounts);
    expect(list.meta.total).toBe(2);
    expect(list.links.self).toBe(`${ts.baseUrl}/v2.0/accounts-list?limit=100&offset=0`);
    const second = (await a.mh.getAccountsList({ userId, params: { limit: 1, offset: 1 } })) as unknown as List<Account>;
    expect(second.data).toEqual([accounts[1]]);
  });

  it('answers 404 for an account id that does not exist, in any form', async () => {
    for (const accountId of [NO_ACCOUNT, 'not-a-uuid']) {
      const err = await rejection(a.mh.getAccount({ userId, accountId }));
      expect(err.response?.statusCode, accountId).toBe(404);
      expect(err.error).toBe('not_found');
    }
  });

  it('pages accounts with limit and offset', async () => {
    const first = await getAccounts({ limit: 1 });
    expect(first.data.map((x) => x.id)).toEqual([accounts[0]?.id]);
    expect(first.meta.total).toBe(2);
    expect(first.links.next).toBe(`${ts.baseUrl}/v2.0/accounts?limit=1&offset=1`);
    const second = await getAccounts({ limit: 1, offset: 1 });
    expect(second.data.map((x) => x.id)).toEqual([accounts[1]?.id]);
    expect(second.links.next).toBeUndefined();
    expect(second.links.prev).toBe(`${ts.baseUrl}/v2.0/accounts?limit=1&offset=0`);
    expect((await getAccounts({ offset: 5 })).data).toEqual([]);
    const tooMany = await rejection(a.mh.getAccounts({ userId, params: { limit: 1001 } }));
    expect(tooMany.response?.statusCode).toBe(400);
    expect(tooMany.error_description).toContain('limit');
  });

  it('lists all thirty transactions newest first, each tied to its account and connection', async () => {
    const list = await getTransactions();
    transactions = list.data;
    expect(transactions).toHaveLength(30);
    expect(list.meta.total).toBe(30);
    const times = transactions.map((t) => Date.parse(t.date));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    expect(new Set(transactions.map((t) => t.id)).size).toBe(30);
    const accountIds = new Set(accounts.map((x) => x.id));
    for (const t of transactions) {
      expect(accountIds.has(t.accountId)).toBe(true);
      expect(t.connectionId).toBe(connectionId);
      expect(Number.isInteger(t.amount.value)).toBe(true);
      expect(t.amount.value).not.toBe(0);
      expect(t.amount.currency).toBe('GBP');
      expect(t.status).toBe('posted');
      expect(t.shortDescription.length).toBeGreaterThan(0);
      expect(typeof t.longDescription).toBe('string');
      expect(Number.isNaN(Date.parse(t.dateModified))).toBe(false);
    }
    // transactionData agrees with the transactions themselves.
    for (const acc of accounts) {
      const own = transactions.filter((t) => t.accountId === acc.id);
      expect(acc.transactionData.count).toBe(own.length);
      expect(acc.transactionData.lastDate).toBe(own[0]?.date);
      expect(acc.transactionData.earliestDate).toBe(own[own.length - 1]?.date);
    }
  });

  it('serves getTransaction: each transaction by id, identical to its entry in the list; 404 otherwise', async () => {
    for (const t of transactions.slice(0, 5)) {
      const { data } = await a.mh.getTransaction({ userId, transactionId: t.id });
      expect(data).toEqual(t);
    }
    for (const transactionId of [NO_ACCOUNT, 'not-a-uuid']) {
      const err = await rejection(a.mh.getTransaction({ userId, transactionId }));
      expect(err.response?.statusCode, transactionId).toBe(404);
      expect(err.error).toBe('not_found');
    }
    const otherUser = (await a.mh.registerUser({ clientUserId: 'transaction-peeker' })).userId;
    const theirs = await rejection(a.mh.getTransaction({ userId: otherUser, transactionId: transactions[0]?.id ?? '' }));
    expect(theirs.response?.statusCode).toBe(404);
    const accountsOnly = await accessToken(ts.baseUrl, a, 'accounts:read', userId);
    expect((await call(ts.baseUrl, 'GET', `/v2.0/transactions/${transactions[0]?.id ?? ''}`, { token: accountsOnly })).status).toBe(403);
  });

  it('filters transactions by account', async () => {
    for (const acc of accounts) {
      const list = await getTransactions({ accountId: acc.id });
      expect(list.data.map((t) => t.id)).toEqual(transactions.filter((t) => t.accountId === acc.id).map((t) => t.id));
      expect(list.meta.total).toBe(acc.transactionData.count);
    }
    for (const accountId of [NO_ACCOUNT, 'not-a-uuid']) {
      const list = await getTransactions({ accountId });
      expect(list.data).toEqual([]);
      expect(list.meta.total).toBe(0);
    }
  });

  it('filters by startDate and endDate, both inclusive, as days or as date-times', async () => {
    const newer = transactions[5];
    const older = transactions[14];
    if (newer === undefined || older === undefined) throw new Error('expected thirty transactions');
    // Sandbox transactions fall one per UTC day, so a range of days holds exactly those transactions.
    const byDays = await getTransactions({ startDate: day(older.date), endDate: day(newer.date) });
    expect(byDays.data.map((t) => t.id)).toEqual(transactions.slice(5, 15).map((t) => t.id));
    expect(byDays.meta.total).toBe(10);

    const exact = await getTransactions({ startDate: older.date, endDate: newer.date });
    expect(exact.data.map((t) => t.id)).toEqual(transactions.slice(5, 15).map((t) => t.id));
    const justAfter = new Date(Date.parse(older.date) + 1).toISOString();
    const justBefore = new Date(Date.parse(newer.date) - 1).toISOString();
    expect((await getTransactions({ startDate: justAfter, endDate: justBefore })).data.map((t) => t.id)).toEqual(transactions.slice(6, 14).map((t) => t.id));

    const oneDay = await getTransactions({ startDate: day(newer.date), endDate: day(newer.date) });
    expect(oneDay.data.map((t) => t.id)).toEqual([newer.id]);
    expect((await getTransactions({ startDate: day(transactions[0]?.date ?? '') })).data).toHaveLength(1);
    expect((await getTransactions({ endDate: day(older.date) })).meta.total).toBe(16);

    const account = newer.accountId;
    const combined = await getTransactions({ accountId: account, startDate: day(older.date), endDate: day(newer.date) });
    expect(combined.data.map((t) => t.id)).toEqual(transactions.slice(5, 15).filter((t) => t.accountId === account).map((t) => t.id));
  });

  it('pages transactions with limit and offset, keeping the filters in the links, and counts the filtered set', async () => {
    const pages: Transaction[] = [];
    for (let offset = 0; offset < 30; offset += 7) {
      const page = await getTransactions({ limit: 7, offset });
      expect(page.meta.total).toBe(30);
      pages.push(...page.data);
    }
    expect(pages.map((t) => t.id)).toEqual(transactions.map((t) => t.id));

    const acc = accounts[0];
    if (acc === undefined) throw new Error('expected accounts');
    const filtered = await getTransactions({ accountId: acc.id, limit: 5 });
    expect(filtered.data).toHaveLength(5);
    expect(filtered.meta.total).toBe(acc.transactionData.count);
    expect(filtered.links.next).toBe(`${ts.baseUrl}/v2.0/transactions?accountId=${acc.id}&limit=5&offset=5`);
    expect((await getTransactions({ limit: 1000 })).data).toHaveLength(30);
  });

  it('rejects bad dates with a 400 naming the field, and a startDate after the endDate', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ startDate: 'yesterday' }, 'startDate'],
      [{ startDate: '2024-13-01' }, 'startDate'],
      [{ endDate: '2024-02-30' }, 'endDate'],
      [{ endDate: '2024-02-01T25:00:00Z' }, 'endDate'],
      [{ endDate: '' }, 'endDate'],
      [{ startDate: '2024-03-02', endDate: '2024-03-01' }, 'startDate'],
      [{ startDate: '2024-03-01T12:00:00Z', endDate: '2024-03-01T11:59:59Z' }, 'startDate'],
    ];
    for (const [params, field] of cases) {
      const err = await rejection(a.mh.getTransactions({ userId, params }));
      expect(err.response?.statusCode, JSON.stringify(params)).toBe(400);
      expect(err.error).toBe('invalid_request');
      expect(err.error_description, JSON.stringify(params)).toContain(field);
    }
    // The same day as both bounds is a valid one-day range.
    expect((await getTransactions({ startDate: '2024-03-01', endDate: '2024-03-01' })).meta.total).toBe(0);
  });

  it('enforces scopes and a user-bound token', async () => {
    const accountsOnly = await accessToken(ts.baseUrl, a, 'accounts:read', userId);
    expect((await call(ts.baseUrl, 'GET', '/v2.0/accounts', { token: accountsOnly })).status).toBe(200);
    expect((await call(ts.baseUrl, 'GET', '/v2.0/transactions', { token: accountsOnly })).status).toBe(403);
    const transactionsOnly = await accessToken(ts.baseUrl, a, 'transactions:read:all', userId);
    expect((await call(ts.baseUrl, 'GET', '/v2.0/transactions', { token: transactionsOnly })).status).toBe(200);
    expect((await call(ts.baseUrl, 'GET', `/v2.0/accounts/${accounts[0]?.id ?? ''}`, { token: transactionsOnly })).status).toBe(403);
    const noUser = await accessToken(ts.baseUrl, a, ALL_API_SCOPES);
    for (const path of ['/v2.0/accounts', `/v2.0/accounts/${accounts[0]?.id ?? ''}`, '/v2.0/transactions']) {
      expect((await call(ts.baseUrl, 'GET', path, { token: noUser })).status, path).toBe(403);
      expect((await call(ts.baseUrl, 'GET', path)).status, path).toBe(401);
    }
  });

  it("shows another user's or another client's accounts exactly as accounts that do not exist", async () => {
    const accountId = accounts[0]?.id ?? '';
    const otherUser = (await a.mh.registerUser({ clientUserId: 'other-user' })).userId;
    const b = await apiClient(ts.baseUrl);
    const userB = (await b.mh.registerUser({ clientUserId: 'accounts-user' })).userId;
    const viewers: [string, ApiClient, string][] = [['same client, other user', a, otherUser], ['other client', b, userB]];
    for (const [who, client, viewer] of viewers) {
      const token = await accessToken(ts.baseUrl, client, ALL_API_SCOPES, viewer);
      const theirs = await call(ts.baseUrl, 'GET', `/v2.0/accounts/${accountId}`, { token });
      const missing = await call(ts.baseUrl, 'GET', `/v2.0/accounts/${NO_ACCOUNT}`, { token });
      expect(missing.status, who).toBe(404);
      expect(theirs.status, who).toBe(404);
      expect(theirs.body, who).toEqual(missing.body);

      const list = await client.mh.getAccounts({ userId: viewer });
      expect(list.data, who).toEqual([]);
      const txs = (await client.mh.getTransactions({ userId: viewer, params: { accountId } })) as unknown as List<Transaction>;
      expect(txs.data, who).toEqual([]);
      expect(txs.meta.total, who).toBe(0);
      const all = (await client.mh.getTransactions({ userId: viewer })) as unknown as List<Transaction>;
      expect(all.meta.total, who).toBe(0);
    }
    // Client B cannot even obtain a token for A's user.
    const err = await rejection(b.mh.getAccounts({ userId }));
    expect(err.error).toBe('invalid_grant');
  });

  it('documents the three endpoints in the OpenAPI description', async () => {
    const doc = (await call(ts.baseUrl, 'GET', '/docs/json')).body as { paths: Record<string, Record<string, { summary?: string; tags?: string[] }>> };
    for (const [path, tag] of [['/v2.0/accounts', 'accounts'], ['/v2.0/accounts/{accountId}', 'accounts'], ['/v2.0/transactions', 'transactions']] as const) {
      const op = doc.paths[path]?.get;
      expect(op?.summary, path).toEqual(expect.any(String));
      expect(op?.tags, path).toEqual([tag]);
    }
  });

  it('does not duplicate transactions when the connection is synced again', async () => {
    const before = new Map(transactions.map((t) => [t.id, t]));
    const result = await a.mh.syncUserConnection({ userId, connectionId });
    expect(result.data.status).toBe('ok');
    const after = await getTransactions();
    expect(after.meta.total).toBe(30);
    expect(after.data.map((t) => t.id)).toEqual(transactions.map((t) => t.id));
    for (const t of after.data) expect(t).toEqual(before.get(t.id));
    const again = await getAccounts();
    expect(again.data.map((x) => [x.id, x.transactionData.count])).toEqual(accounts.map((x) => [x.id, x.transactionData.count]));
  });

  it('brings in newer transactions on a later sync, newest first, still without duplicates', async () => {
    const control = await call(ts.baseUrl, 'POST', '/sandbox/clock', { token: ADMIN_TOKEN, json: { advance: 'P3D' } });
    expect(control.status, control.text).toBeLessThan(300);
    await a.mh.syncUserConnection({ userId, connectionId });
    const after = await getTransactions();
    // One transaction a day at a varying time of day: three days bring two to four more.
    expect(after.meta.total).toBeGreaterThanOrEqual(32);
    expect(after.meta.total).toBeLessThanOrEqual(34);
    expect(Date.parse(after.data[0]?.date ?? '')).toBeGreaterThan(Date.parse(transactions[0]?.date ?? ''));
    expect(new Set(after.data.map((t) => t.id)).size).toBe(after.meta.total);
    expect(after.data.slice(after.meta.total - 30).map((t) => t.id)).toEqual(transactions.map((t) => t.id));
  });

  it('types the accounts of a pension provider (PensionBee, listed with pension accounts) as pensions', async () => {
    const catalog = await a.mh.listConnections();
    const pensionBee = catalog.find((c) => c.name === 'PensionBee');
    expect(pensionBee?.accountTypes.map((t) => t.name)).toEqual(['pension']);
    const saver = (await a.mh.registerUser({ clientUserId: 'pension-saver' })).userId;
    const pensionConnection = await connectBank(a, saver, pensionBee?.id ?? '');
    const list = (await a.mh.getAccounts({ userId: saver })) as unknown as List<Account>;
    expect(list.data).toHaveLength(2);
    for (const acc of list.data) expect(acc).toMatchObject({ type: 'pension', providerName: 'PensionBee', connectionId: pensionConnection });
  });
});
