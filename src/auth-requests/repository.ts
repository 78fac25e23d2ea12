import type { Queryable } from '../db/db.ts';

export const AUTH_REQUEST_STATUSES = ['pending', 'complete', 'error'] as const;
export type AuthRequestStatus = (typeof AUTH_REQUEST_STATUSES)[number];

export interface AuthRequestRow {
  id: string;
  client_id: string;
  user_id: string | null;
  scope: string;
  bank_id: string | null;
  connection_id: string | null;
  redirect_uri: string;
  state: string;
  nonce: string;
  auth_url: string;
  status: AuthRequestStatus;
  error: string | null;
  created_at: Date;
  completed_at: Date | null;
}

const COLUMNS = 'id::text as id, client_id, user_id, scope, bank_id, connection_id, redirect_uri, state, nonce, auth_url, status, error, created_at, completed_at';

export function authRequestsRepository(db: Queryable) {
  return {
    async insert(r: Omit<AuthRequestRow, 'status' | 'error' | 'completed_at'>): Promise<void> {
      await db.query(
        `insert into auth_requests (id, client_id, user_id, scope, bank_id, connection_id, redirect_uri, state, nonce, auth_url, status, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11)`,
        [r.id, r.client_id, r.user_id, r.scope, r.bank_id, r.connection_id, r.redirect_uri, r.state, r.nonce, r.auth_url, r.created_at],
      );
    },
    async find(clientId: string, id: string): Promise<AuthRequestRow | undefined> {
      return (await db.query<AuthRequestRow>(`select ${COLUMNS} from auth_requests where id = $2::uuid and client_id = $1`, [clientId, id])).rows[0];
    },
    async list(clientId: string, limit: number, offset: number): Promise<{ rows: AuthRequestRow[]; total: number }> {
      const [page, count] = await Promise.all([
        db.query<AuthRequestRow>(`select ${COLUMNS} from auth_requests where client_id = $1 order by created_at desc, id desc limit $2 offset $3`, [clientId, limit, offset]),
        db.query<{ n: string }>('select count(*) as n from auth_requests where client_id = $1', [clientId]),
      ]);
      return { rows: page.rows, total: Number(count.rows[0]?.n ?? 0) };
    },
    /** Settles a pending request; false when it was no longer pending (completed twice). */
    async settle(id: string, s: { status: 'complete' | 'error'; userId: string | null; connectionId: string | null; error: string | null; now: Date }): Promise<boolean> {
      const r = await db.query(
        `update auth_requests set status = $2, user_id = coalesce($3, user_id), connection_id = coalesce($4, connection_id), error = $5, completed_at = $6
          where id = $1::uuid and status = 'pending'`,
        [id, s.status, s.userId, s.connectionId, s.error, s.now],
      );
      return r.rowCount > 0;
    },
  };
}
