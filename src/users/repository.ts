/** SQL for users. Every query is scoped by the owning API client. */
import type { Queryable } from '../db/db.ts';

export interface UserRow {
  id: string;
  client_id: string;
  client_user_id: string | null;
  user_type: string;
  scopes: string;
  created_at: Date;
  updated_at: Date;
  last_accessed: Date | null;
  connection_ids: string[];
}

const SELECT_USER = `
  select u.id, u.client_id, u.client_user_id, u.user_type, u.scopes, u.created_at, u.updated_at, u.last_accessed,
    coalesce((select array_agg(c.id order by c.created_at) from connections c where c.user_id = u.id), '{}') as connection_ids
  from users u`;

export function usersRepository(db: Queryable) {
  return {
    async insert(u: { id: string; clientId: string; clientUserId: string | null; userType: string; scopes: string; now: Date }): Promise<void> {
      await db.query(
        `insert into users (id, client_id, client_user_id, user_type, scopes, created_at, updated_at, last_accessed)
         values ($1, $2, $3, $4, $5, $6, $6, $6)`,
        [u.id, u.clientId, u.clientUserId, u.userType, u.scopes, u.now],
      );
    },

    async findForClient(id: string, clientId: string): Promise<UserRow | undefined> {
      const r = await db.query<UserRow>(`${SELECT_USER} where u.id = $1 and u.client_id = $2`, [id, clientId]);
      return r.rows[0];
    },

    async existsForClient(id: string, clientId: string): Promise<boolean> {
      const r = await db.query('select 1 from users where id = $1 and client_id = $2', [id, clientId]);
      return r.rowCount > 0;
    },

    async listForClient(clientId: string, limit: number, offset: number): Promise<{ rows: UserRow[]; total: number }> {
      const [page, count] = await Promise.all([
        db.query<UserRow>(`${SELECT_USER} where u.client_id = $1 order by u.created_at, u.id limit $2 offset $3`, [clientId, limit, offset]),
        db.query<{ n: string }>('select count(*) as n from users where client_id = $1', [clientId]),
      ]);
      return { rows: page.rows, total: Number(count.rows[0]?.n ?? 0) };
    },

    async clientIdOf(id: string): Promise<string | undefined> {
      const r = await db.query<{ client_id: string }>('select client_id from users where id = $1', [id]);
      return r.rows[0]?.client_id;
    },

    async touch(id: string, now: Date): Promise<void> {
      await db.query('update users set last_accessed = $2 where id = $1', [id, now]);
    },

    async delete(id: string, clientId: string): Promise<boolean> {
      const r = await db.query('delete from users where id = $1 and client_id = $2', [id, clientId]);
      return r.rowCount > 0;
    },
  };
}
export type UsersRepository = ReturnType<typeof usersRepository>;
