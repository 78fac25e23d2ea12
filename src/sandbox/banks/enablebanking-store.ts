/**
 * The Enable Banking sandbox counterpart's persistent state (migrations/0016_sandbox_enablebanking.sql):
 * authorisations and the sessions they become, and the sessions' account uids. Every time here is
 * the caller's (the domain clock).
 */
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../../db/db.ts';

/** SessionStatus, as the Enable Banking API names it. */
export type EbSessionStatus = 'PENDING_AUTHORIZATION' | 'RETURNED_FROM_BANK' | 'AUTHORIZED' | 'EXPIRED' | 'REVOKED' | 'CANCELLED' | 'CLOSED' | 'INVALID';

export interface EbSessionRow {
  id: string;
  sessionId: string | null;
  applicationId: string;
  aspsp: { name: string; country: string };
  psuType: string;
  status: EbSessionStatus;
  validUntil: Date;
  redirectUrl: string;
  state: string;
  username: string | null;
  behaviour: string | null;
  createdAt: Date;
  authorizedAt: Date | null;
  closedAt: Date | null;
  fetchCount: number;
}

interface DbRow {
  id: string;
  session_id: string | null;
  application_id: string;
  aspsp_name: string;
  aspsp_country: string;
  psu_type: string;
  status: EbSessionStatus;
  valid_until: Date;
  redirect_url: string;
  state: string;
  username: string | null;
  behaviour: string | null;
  created_at: Date;
  authorized_at: Date | null;
  closed_at: Date | null;
  fetch_count: number;
}

const toRow = (r: DbRow): EbSessionRow => ({
  id: r.id,
  sessionId: r.session_id,
  applicationId: r.application_id,
  aspsp: { name: r.aspsp_name, country: r.aspsp_country },
  psuType: r.psu_type,
  status: r.status,
  validUntil: r.valid_until,
  redirectUrl: r.redirect_url,
  state: r.state,
  username: r.username,
  behaviour: r.behaviour,
  createdAt: r.created_at,
  authorizedAt: r.authorized_at,
  closedAt: r.closed_at,
  fetchCount: r.fetch_count,
});

export async function insertAuthorization(
  db: Queryable,
  a: { applicationId: string; aspsp: { name: string; country: string }; psuType: string; validUntil: Date; redirectUrl: string; state: string; now: Date },
): Promise<EbSessionRow> {
  const r = await db.query<DbRow>(
    `insert into sandbox_eb_sessions (id, application_id, aspsp_name, aspsp_country, psu_type, status, valid_until, redirect_url, state, created_at)
     values ($1, $2, $3, $4, $5, 'PENDING_AUTHORIZATION', $6, $7, $8, $9) returning *`,
    [randomUUID(), a.applicationId, a.aspsp.name, a.aspsp.country, a.psuType, a.validUntil, a.redirectUrl, a.state, a.now],
  );
  return toRow(r.rows[0] as DbRow);
}

export async function getAuthorization(db: Queryable, id: string): Promise<EbSessionRow | null> {
  const r = await db.query<DbRow>('select * from sandbox_eb_sessions where id = $1', [id]);
  return r.rows[0] === undefined ? null : toRow(r.rows[0]);
}

export async function getSession(db: Queryable, sessionId: string, applicationId: string): Promise<EbSessionRow | null> {
  const r = await db.query<DbRow>('select * from sandbox_eb_sessions where session_id = $1 and application_id = $2', [sessionId, applicationId]);
  return r.rows[0] === undefined ? null : toRow(r.rows[0]);
}

/** The session an account uid belongs to (of this application), and the account's position in it. */
export async function sessionOfAccount(db: Queryable, uid: string, applicationId: string): Promise<{ session: EbSessionRow; position: number } | null> {
  const r = await db.query<DbRow & { position: number }>(
    `select s.*, a.position from sandbox_eb_accounts a join sandbox_eb_sessions s on s.session_id = a.session_id
     where a.uid = $1 and s.application_id = $2`,
    [uid, applicationId],
  );
  const row = r.rows[0];
  return row === undefined ? null : { session: toRow(row), position: row.position };
}

/** The customer answered on the login page: approve (RETURNED_FROM_BANK, with who they are) or cancel (CANCELLED). */
export async function answerAuthorization(
  db: Queryable,
  id: string,
  answer: { status: 'RETURNED_FROM_BANK'; username: string; behaviour: string } | { status: 'CANCELLED' },
): Promise<boolean> {
  const r = await db.query(
    `update sandbox_eb_sessions set status = $2, username = $3, behaviour = $4
     where id = $1 and status = 'PENDING_AUTHORIZATION'`,
    [id, answer.status, answer.status === 'CANCELLED' ? null : answer.username, answer.status === 'CANCELLED' ? null : answer.behaviour],
  );
  return r.rowCount > 0;
}

/** The code was exchanged: the session is AUTHORIZED with these account uids (in order). */
export async function authorizeSession(db: Queryable, id: string, accountUids: string[], now: Date): Promise<string | null> {
  const sessionId = randomUUID();
  const r = await db.query(
    `update sandbox_eb_sessions set status = 'AUTHORIZED', session_id = $2, authorized_at = $3, fetch_count = 0
     where id = $1 and status = 'RETURNED_FROM_BANK'`,
    [id, sessionId, now],
  );
  if (r.rowCount === 0) return null;
  for (const [position, uid] of accountUids.entries()) {
    await db.query('insert into sandbox_eb_accounts (uid, session_id, position) values ($1, $2, $3)', [uid, sessionId, position]);
  }
  return sessionId;
}

export async function setSessionStatus(db: Queryable, id: string, status: 'EXPIRED' | 'REVOKED' | 'CLOSED' | 'INVALID', now: Date): Promise<void> {
  await db.query(
    `update sandbox_eb_sessions set status = $2, closed_at = case when $2 = 'CLOSED' then $3 else closed_at end where id = $1`,
    [id, status, now],
  );
}

/** Counts one more sync against a session and answers its number (1 for the first). */
export async function countSessionSync(db: Queryable, id: string): Promise<number> {
  const r = await db.query<{ fetch_count: number }>('update sandbox_eb_sessions set fetch_count = fetch_count + 1 where id = $1 returning fetch_count', [id]);
  return r.rows[0]?.fetch_count ?? 1;
}

/**
 * The sandbox control API's behaviour switch for a session (by session_id, the `ref` of an Enable
 * Banking connection); a session user_revoked left REVOKED is the customer's again under another
 * behaviour. Answers false when there is no such session.
 */
export async function setSessionBehaviour(db: Queryable, sessionId: string, username: string): Promise<boolean> {
  const r = await db.query(
    `update sandbox_eb_sessions set status = case when status = 'REVOKED' and behaviour = 'user_revoked' and $2 <> 'user_revoked' then 'AUTHORIZED' else status end,
       behaviour = $2 where session_id = $1`,
    [sessionId, username],
  );
  return r.rowCount > 0;
}

/** A session's account uids, in the session's order. */
export async function accountUidsOf(db: Queryable, sessionId: string): Promise<string[]> {
  const r = await db.query<{ uid: string }>('select uid from sandbox_eb_accounts where session_id = $1 order by position', [sessionId]);
  return r.rows.map((x) => x.uid);
}
