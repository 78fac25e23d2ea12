/**
 * The operator console's answers: search across users, connections and API clients; one
 * connection as its client sees it with its timeline; a sync now (unattended, within the budget);
 * a webhook event delivered again. The admin sees every client's data.
 */
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { AppError, badRequest, notFound } from '../errors.ts';
import { isConnectionId, isUserId, isUuid } from '../ids.ts';
import type { Catalog } from '../providers/catalog.ts';
import type { ConnectionsService } from '../connections/service.ts';
import type { ConnectionJson } from '../connections/schemas.ts';
import type { SyncEngine } from '../syncs/engine.ts';
import { toSyncJson } from '../syncs/runner.ts';
import type { SyncJson } from '../syncs/schemas.ts';
import type { UsersService } from '../users/service.ts';
import type { UserJson } from '../users/schemas.ts';
import { webhooksRepository } from '../webhooks/repository.ts';
import { consoleRepository, type ConnectionHit } from './repository.ts';
import { timelineSources } from './entries.ts';
import { boundFor, mergeTimeline, type TimelineCursor, type TimelineEntry, type TimelineKind } from './timeline.ts';

/** Hits per kind of search result at most. */
export const SEARCH_LIMIT = 20;
/** A search term longer than this is no id, clientUserId or name Mooring stores. */
export const SEARCH_MAX_LENGTH = 200;

export interface SearchResult {
  users: { userId: string; clientId: string; clientUserId: string | null; createdAt: string; match: 'exact' | 'prefix' }[];
  connections: { connectionId: string; userId: string; providerId: string; providerName: string; state: string | null; match: 'exact' | 'via_user' }[];
  clients: { clientId: string; name: string | null; match: 'exact' | 'prefix' }[];
}

export interface ConnectionDetail {
  connection: ConnectionJson;
  user: UserJson;
  client: { clientId: string; name: string | null };
  provider: { id: string; name: string; type: string };
  timeline: { entries: TimelineEntry[]; next: TimelineCursor | null };
}

export interface ConsoleServiceDeps {
  db: Db;
  catalog: Catalog;
  clock: Clock;
  connections: ConnectionsService;
  users: UsersService;
  engine: SyncEngine;
  /** Starts delivering what is due in this process (the webhook dispatcher's pump). */
  deliverSoon(): void;
  /** Writes this process's buffered provider calls (before a timeline is read). */
  flushCallLog(): Promise<void>;
}

export function consoleService(deps: ConsoleServiceDeps) {
  const repo = consoleRepository(deps.db);
  const providerName = (id: string): string => deps.catalog.get(id)?.name ?? 'Unknown provider';

  async function connectionOrThrow(connectionId: string): Promise<ConnectionHit> {
    const hit = isConnectionId(connectionId) ? await repo.connectionById(connectionId) : undefined;
    if (hit === undefined) throw notFound('Connection');
    return hit;
  }

  return {
    async search(raw: string): Promise<SearchResult> {
      const q = raw.trim();
      if (q === '' || q.length > SEARCH_MAX_LENGTH) {
        throw badRequest('invalid_query', `q must be 1 to ${SEARCH_MAX_LENGTH} characters: a user id, clientUserId, connection id, client id or client name`, { field: 'q' });
      }
      const [byId, byClientUserId, connection, clientById, clientsByName] = await Promise.all([
        isUserId(q) ? repo.userById(q) : Promise.resolve(undefined),
        repo.usersByClientUserIdPrefix(q, SEARCH_LIMIT),
        isConnectionId(q) ? repo.connectionById(q) : Promise.resolve(undefined),
        repo.clientById(q),
        repo.clientsByNamePrefix(q, SEARCH_LIMIT),
      ]);
      const users = new Map<string, SearchResult['users'][number]>();
      const addUser = (u: { id: string; client_id: string; client_user_id: string | null; created_at: Date }, match: 'exact' | 'prefix'): void => {
        if (!users.has(u.id)) users.set(u.id, { userId: u.id, clientId: u.client_id, clientUserId: u.client_user_id, createdAt: u.created_at.toISOString(), match });
      };
      if (byId !== undefined) addUser(byId, 'exact');
      for (const u of byClientUserId) if (u.client_user_id === q) addUser(u, 'exact');
      for (const u of byClientUserId) addUser(u, 'prefix');
      const found = [...users.values()].slice(0, SEARCH_LIMIT);

      const connections: SearchResult['connections'] = [];
      const toHit = (c: ConnectionHit, match: 'exact' | 'via_user'): SearchResult['connections'][number] =>
        ({ connectionId: c.id, userId: c.user_id, providerId: c.provider_id, providerName: providerName(c.provider_id), state: c.notified_state, match });
      if (connection !== undefined) connections.push(toHit(connection, 'exact'));
      for (const c of await repo.connectionsOfUsers(found.map((u) => u.userId), SEARCH_LIMIT * 5)) {
        if (c.id !== connection?.id) connections.push(toHit(c, 'via_user'));
      }

      const clients = new Map<string, SearchResult['clients'][number]>();
      if (clientById !== undefined) clients.set(clientById.id, { clientId: clientById.id, name: clientById.name, match: 'exact' });
      for (const c of clientsByName) if (!clients.has(c.id)) clients.set(c.id, { clientId: c.id, name: c.name, match: 'prefix' });
      return { users: found, connections, clients: [...clients.values()].slice(0, SEARCH_LIMIT) };
    },

    async connection(connectionId: string, page: { kinds: TimelineKind[]; cursor: TimelineCursor | null; limit: number }): Promise<ConnectionDetail> {
      const hit = await connectionOrThrow(connectionId);
      const user = await deps.users.get((await repo.userById(hit.user_id))?.client_id ?? '', hit.user_id);
      const [connection, client] = await Promise.all([deps.connections.get(hit.user_id, connectionId), repo.clientById(user.clientId)]);
      const provider = deps.catalog.get(hit.provider_id);
      if (page.kinds.includes('provider_call')) await deps.flushCallLog();
      const sources = timelineSources(repo);
      // One more than a page of each source: enough to know whether another page follows.
      const read = await Promise.all(page.kinds.map((k) => sources[k](connectionId, boundFor(k, page.cursor), page.limit + 1)));
      return {
        connection, user,
        client: { clientId: user.clientId, name: client?.name ?? null },
        provider: { id: hit.provider_id, name: provider?.name ?? 'Unknown provider', type: provider?.type ?? 'api' },
        timeline: mergeTimeline(read, page.limit),
      };
    },

    /**
     * An unattended sync now, as the scheduler would run it (action auto-update), within the
     * connection's unattended budget: over it, or while the provider's 429 holds, a 429 with Retry-After.
     */
    async syncNow(connectionId: string): Promise<{ status: 'ok' | 'error'; sync: SyncJson }> {
      await connectionOrThrow(connectionId);
      const outcome = await deps.engine.sync({ connectionId, action: 'auto-update', attended: false }, { wait: true, enforceBudget: true });
      if (outcome.kind === 'skipped') {
        if (outcome.reason === 'rate_limited') {
          const until = outcome.until.toISOString();
          const seconds = Math.max(1, Math.ceil((outcome.until.getTime() - deps.clock.now().getTime()) / 1000));
          throw new AppError(429, 'provider_rate_limited', `${outcome.providerName} limited how often Mooring may ask for this connection's data; Mooring does not call it before ${until}.`, {
            details: { retryAfter: until }, headers: { 'retry-after': String(seconds) },
          });
        }
        if (outcome.reason === 'not_found') throw notFound('Connection');
        throw new AppError(409, `sync_not_possible`, outcome.reason === 'expired'
          ? "The connection's consent has expired: no sync runs until the user renews it"
          : 'The provider of this connection has been removed: no sync runs', { details: { reason: outcome.reason } });
      }
      return { status: outcome.sync.fetch_status === 'success' ? 'ok' : 'error', sync: toSyncJson(outcome.sync) };
    },

    /** Queues a webhook event for one more delivery (same id) and starts delivering it; answers its connection. */
    async replay(eventId: string): Promise<{ eventId: string; connectionId: string | null }> {
      const event = isUuid(eventId) ? await repo.webhookEvent(eventId) : undefined;
      if (event === undefined) throw notFound('Event');
      if (!(await webhooksRepository(deps.db).replay(event.client_id, eventId, deps.clock.now()))) {
        throw new AppError(409, 'no_webhook', 'No webhook URL is registered for the client of this event; set one first', { details: { clientId: event.client_id } });
      }
      deps.deliverSoon();
      return { eventId, connectionId: event.connection_id };
    },
  };
}
export type ConsoleService = ReturnType<typeof consoleService>;
