/** Resource-server data: the accounts and transactions that syncs bring in, for the token's user. */
import type { Db } from '../db/db.ts';
import { authOf } from '../oauth/bearer.ts';
import { dataOf, errorResponses, listOf, pageLinks, pageOf, Pagination } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import type { Catalog } from '../providers/catalog.ts';
import { accountsRepository } from './repository.ts';
import { Account, AccountParams, Transaction, TransactionParams, TransactionsQuery } from './schemas.ts';
import { accountsService } from './service.ts';

export function accountsRoutes(app: App, deps: { db: Db; catalog: Catalog; publicUrl: string }): void {
  const accounts = accountsService({ accounts: accountsRepository(deps.db), catalog: deps.catalog });
  const user = (req: Parameters<typeof authOf>[0]) => {
    const auth = authOf(req);
    return { clientId: auth.clientId, userId: auth.userId ?? '' };
  };

  // /v2.0/accounts-list is what the official client's getAccountsList calls: the same accounts,
  // without details (Mooring's accounts carry none, so the entries are those of /v2.0/accounts).
  const accountLists = [
    ['/v2.0/accounts', "List the user's accounts"],
    ['/v2.0/accounts-list', "List the user's accounts without details"],
  ] as const;
  for (const [path, summary] of accountLists) {
    app.get(path, {
      config: { scopes: ['accounts:read'], requiresUser: true },
      schema: {
        tags: ['accounts'],
        summary,
        security: [{ bearer: ['accounts:read'] }],
        querystring: Pagination,
        response: { 200: listOf(Account), ...errorResponses },
      },
    }, async (req) => {
      const { clientId, userId } = user(req);
      const page = pageOf(req.query);
      const { accounts: data, total } = await accounts.list(clientId, userId, page);
      return { data, links: pageLinks(deps.publicUrl, path, page, total), meta: { total } };
    });
  }

  app.get('/v2.0/accounts/:accountId', {
    config: { scopes: ['accounts:read'], requiresUser: true },
    schema: {
      tags: ['accounts'],
      summary: 'Get one of the user\'s accounts',
      security: [{ bearer: ['accounts:read'] }],
      params: AccountParams,
      response: { 200: dataOf(Account), ...errorResponses },
    },
  }, async (req) => {
    const { clientId, userId } = user(req);
    return { data: await accounts.get(clientId, userId, req.params.accountId) };
  });

  app.get('/v2.0/transactions', {
    config: { scopes: ['transactions:read:all'], requiresUser: true },
    schema: {
      tags: ['transactions'],
      summary: "List the user's transactions, newest first",
      description: 'Filters: accountId, and startDate/endDate (inclusive; a day or an ISO 8601 date-time). meta.total counts every matching transaction.',
      security: [{ bearer: ['transactions:read:all'] }],
      querystring: TransactionsQuery,
      response: { 200: listOf(Transaction), ...errorResponses },
    },
  }, async (req) => {
    const { clientId, userId } = user(req);
    const page = pageOf(req.query);
    const { accountId, startDate, endDate } = req.query;
    const filters = { ...(accountId !== undefined ? { accountId } : {}), ...(startDate !== undefined ? { startDate } : {}), ...(endDate !== undefined ? { endDate } : {}) };
    const { transactions, total } = await accounts.transactions(clientId, userId, filters, page);
    return { data: transactions, links: pageLinks(deps.publicUrl, '/v2.0/transactions', page, total, filters), meta: { total } };
  });

  app.get('/v2.0/transactions/:transactionId', {
    config: { scopes: ['transactions:read:all'], requiresUser: true },
    schema: {
      tags: ['transactions'],
      summary: "Get one of the user's transactions",
      security: [{ bearer: ['transactions:read:all'] }],
      params: TransactionParams,
      response: { 200: dataOf(Transaction), ...errorResponses },
    },
  }, async (req) => {
    const { clientId, userId } = user(req);
    return { data: await accounts.transaction(clientId, userId, req.params.transactionId) };
  });
}
