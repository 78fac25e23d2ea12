/** Users: created by an API client, visible only to it. */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { notFound } from '../errors.ts';
import { isUserId } from '../ids.ts';
import type { Page } from '../http/schemas.ts';
import type { UserRow, UsersRepository } from './repository.ts';
import type { UserJson } from './schemas.ts';

export const newUserId = (): string => randomBytes(12).toString('hex');

export function toUserJson(u: UserRow): UserJson {
  const created = u.created_at.toISOString();
  return {
    userId: u.id,
    ...(u.client_user_id !== null ? { clientUserId: u.client_user_id } : {}),
    clientId: u.client_id,
    createdAt: created,
    updatedAt: u.updated_at.toISOString(),
    scopes: u.scopes,
    managedBy: 'client',
    lastAccessed: (u.last_accessed ?? u.created_at).toISOString(),
    userType: u.user_type === 'test' ? 'test' : 'live',
    connectionIds: u.connection_ids,
  };
}

export interface UsersServiceDeps {
  users: UsersRepository;
  clock: Clock;
  sandbox: boolean;
  /** Revokes and deletes everything a user's connections hold (called before the user row goes). */
  deleteUserConnections(userId: string): Promise<void>;
}

export function usersService(deps: UsersServiceDeps) {
  return {
    async create(clientId: string, clientUserId: string | undefined, scopes: string): Promise<UserJson> {
      const id = newUserId();
      await deps.users.insert({ id, clientId, clientUserId: clientUserId ?? null, userType: deps.sandbox ? 'test' : 'live', scopes, now: deps.clock.now() });
      const row = await deps.users.findForClient(id, clientId);
      if (row === undefined) throw new Error('user vanished after insert');
      return toUserJson(row);
    },

    async get(clientId: string, userId: string): Promise<UserJson> {
      const row = isUserId(userId) ? await deps.users.findForClient(userId, clientId) : undefined;
      if (row === undefined) throw notFound('User');
      return toUserJson(row);
    },

    async list(clientId: string, page: Page): Promise<{ users: UserJson[]; total: number }> {
      const { rows, total } = await deps.users.listForClient(clientId, page.limit, page.offset);
      return { users: rows.map(toUserJson), total };
    },

    /** Throws 404 unless the user exists and belongs to the client. */
    async assertOwned(clientId: string, userId: string): Promise<void> {
      if (!isUserId(userId) || !(await deps.users.existsForClient(userId, clientId))) throw notFound('User');
    },

    async delete(clientId: string, userId: string): Promise<void> {
      if (!isUserId(userId) || !(await deps.users.existsForClient(userId, clientId))) throw notFound('User');
      await deps.deleteUserConnections(userId);
      await deps.users.delete(userId, clientId);
    },
  };
}
export type UsersService = ReturnType<typeof usersService>;
