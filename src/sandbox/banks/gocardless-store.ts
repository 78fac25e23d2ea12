/**
 * The GoCardless sandbox counterpart's persistent state (migrations/0015_gocardless.sql): issued
 * tokens (counted, never stored), end-user agreements, requisitions, their accounts, and the
 * successful account-data calls its per-account daily limit counts. Business times come from the
 * caller (the domain clock).
 */
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../../db/db.ts';

export interface GcAgreementRow {
  id: string;
  institutionId: string;
  maxHistoricalDays: number;
  accessValidForDays: number;
  accessScope: string[];
  createdAt: Date;
  acceptedAt: Date | null;
}

export interface GcRequisitionRow {
  id: string;
  institutionId: string;
  agreementId: string;
  redirect: string;
  reference: string | null;
  userLanguage: string | null;
  status: string;
  username: string | null;
  behaviour: string | null;
  createdAt: Date;
  linkedAt: Date | null;
  fetchCount: number;
}

interface AgreementSql { id: string; institution_id: string; max_historical_days: number; access_valid_for_days: number; access_scope: string[]; created_at: Date; accepted_at: Date | null }
interface RequisitionSql {
  id: string; institution_id: string; agreement_id: string; redirect: string; reference: string | null; user_language: string | null; status: string;
  username: string | null; behaviour: string | null; created_at: Date; linked_at: Date | null; fetch_count: number;
}

const agreementOf = (r: AgreementSql): GcAgreementRow => ({
  id: r.id, institutionId: r.institution_id, maxHistoricalDays: r.max_historical_days, accessValidForDays: r.access_valid_for_days,
  accessScope: r.access_scope, createdAt: r.created_at, acceptedAt: r.accepted_at,
});
const requisitionOf = (r: RequisitionSql): GcRequisitionRow => ({
  id: r.id, institutionId: r.institution_id, agreementId: r.agreement_id, redirect: r.redirect, reference: r.reference, userLanguage: r.user_language,
  status: r.status, username: r.username, behaviour: r.behaviour, createdAt: r.created_at, linkedAt: r.linked_at, fetchCount: r.fetch_count,
});

export function gcSandboxStore(db: Queryable) {
  return {
    async recordToken(t: { jti: string; kind: 'access' | 'refresh'; via: 'new' | 'refresh'; secretId: string }): Promise<void> {
      await db.query('insert into sandbox_gc_tokens (jti, kind, via, secret_id) values ($1, $2, $3, $4)', [t.jti, t.kind, t.via, t.secretId]);
    },

    /** How many token pairs `/token/new/` issued (the sandbox's count of what GoCardless limits to 100 an hour). */
    async pairsIssued(): Promise<number> {
      const r = await db.query<{ n: number | string }>("select count(*) as n from sandbox_gc_tokens where kind = 'access' and via = 'new'");
      return Number(r.rows[0]?.n ?? 0);
    },

    async insertAgreement(a: Omit<GcAgreementRow, 'id' | 'acceptedAt'>): Promise<GcAgreementRow> {
      const id = randomUUID();
      await db.query(
        `insert into sandbox_gc_agreements (id, institution_id, max_historical_days, access_valid_for_days, access_scope, created_at)
         values ($1, $2, $3, $4, $5, $6)`,
        [id, a.institutionId, a.maxHistoricalDays, a.accessValidForDays, JSON.stringify(a.accessScope), a.createdAt],
      );
      return { ...a, id, acceptedAt: null };
    },

    async agreement(id: string): Promise<GcAgreementRow | null> {
      const r = await db.query<AgreementSql>('select * from sandbox_gc_agreements where id = $1', [id]);
      const row = r.rows[0];
      return row === undefined ? null : agreementOf(row);
    },

    async insertRequisition(q: Omit<GcRequisitionRow, 'id' | 'status' | 'username' | 'behaviour' | 'linkedAt' | 'fetchCount'>): Promise<GcRequisitionRow> {
      const id = randomUUID();
      await db.query(
        `insert into sandbox_gc_requisitions (id, institution_id, agreement_id, redirect, reference, user_language, status, created_at)
         values ($1, $2, $3, $4, $5, $6, 'CR', $7)`,
        [id, q.institutionId, q.agreementId, q.redirect, q.reference, q.userLanguage, q.createdAt],
      );
      return { ...q, id, status: 'CR', username: null, behaviour: null, linkedAt: null, fetchCount: 0 };
    },

    async requisition(id: string): Promise<GcRequisitionRow | null> {
      const r = await db.query<RequisitionSql>('select * from sandbox_gc_requisitions where id = $1', [id]);
      const row = r.rows[0];
      return row === undefined ? null : requisitionOf(row);
    },

    /** Moves a requisition from one of `from` to `to`; false when it was in none of them. */
    async setStatus(id: string, from: readonly string[], to: string): Promise<boolean> {
      const r = await db.query('update sandbox_gc_requisitions set status = $3 where id = $1 and status = any($2::text[])', [id, [...from], to]);
      return r.rowCount > 0;
    },

    /** The user approved at the bank: the requisition is linked with its accounts and its agreement accepted, in one go. */
    async link(id: string, l: { username: string; behaviour: string; now: Date; accountIds: string[] }): Promise<boolean> {
      const r = await db.query(
        `update sandbox_gc_requisitions set status = 'LN', username = $2, behaviour = $3, linked_at = $4
          where id = $1 and status in ('CR', 'GC', 'UA')`,
        [id, l.username, l.behaviour, l.now],
      );
      if (r.rowCount === 0) return false;
      await db.query(
        'update sandbox_gc_agreements set accepted_at = $2 where id = (select agreement_id from sandbox_gc_requisitions where id = $1)',
        [id, l.now],
      );
      for (const [position, accountId] of l.accountIds.entries()) {
        await db.query('insert into sandbox_gc_accounts (id, requisition_id, position) values ($1, $2, $3)', [accountId, id, position]);
      }
      return true;
    },

    async accountIdsOf(requisitionId: string): Promise<string[]> {
      const r = await db.query<{ id: string }>('select id from sandbox_gc_accounts where requisition_id = $1 order by position', [requisitionId]);
      return r.rows.map((x) => x.id);
    },

    /** The account's requisition and position, or null. */
    async account(id: string): Promise<{ requisition: GcRequisitionRow; position: number } | null> {
      const r = await db.query<RequisitionSql & { position: number }>(
        'select q.*, a.position from sandbox_gc_accounts a join sandbox_gc_requisitions q on q.id = a.requisition_id where a.id = $1',
        [id],
      );
      const row = r.rows[0];
      return row === undefined ? null : { requisition: requisitionOf(row), position: row.position };
    },

    /** Counts one more sync of the requisition (its first account's metadata call); answers its number. */
    async countSync(requisitionId: string): Promise<number> {
      const r = await db.query<{ fetch_count: number }>(
        'update sandbox_gc_requisitions set fetch_count = fetch_count + 1 where id = $1 returning fetch_count',
        [requisitionId],
      );
      return r.rows[0]?.fetch_count ?? 0;
    },

    /** Successful calls of this account and scope since `since`, oldest first. */
    async callsSince(accountId: string, scope: string, since: Date): Promise<Date[]> {
      const r = await db.query<{ at: Date }>(
        'select at from sandbox_gc_calls where account_id = $1 and scope = $2 and at > $3 order by at',
        [accountId, scope, since],
      );
      return r.rows.map((x) => x.at);
    },

    async recordCall(accountId: string, scope: string, at: Date): Promise<void> {
      await db.query('insert into sandbox_gc_calls (account_id, scope, at) values ($1, $2, $3)', [accountId, scope, at]);
    },

    /** Deletes a requisition with its agreement and accounts; false when there was none. */
    async deleteRequisition(id: string): Promise<boolean> {
      const r = await db.query<{ agreement_id: string }>('delete from sandbox_gc_requisitions where id = $1 returning agreement_id', [id]);
      const row = r.rows[0];
      if (row === undefined) return false;
      await db.query('delete from sandbox_gc_agreements where id = $1', [row.agreement_id]);
      return true;
    },
  };
}
