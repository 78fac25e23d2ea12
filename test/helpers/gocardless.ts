/**
 * A GoCardless provider entry as an operator would write it in the providers file, pointing at
 * Mooring's own GoCardless sandbox counterpart (its apiUrl, its secret pair), and what the
 * counterpart itself knows (read from its tables, as a test reads any sandbox bank's state).
 */
import { createHash } from 'node:crypto';
import type { CatalogEntry } from '../../src/providers/catalog.ts';
import type { Queryable } from '../../src/db/db.ts';
import { GC_SANDBOX_PREFIX, SANDBOX_GC_SECRET_ID, SANDBOX_GC_SECRET_KEY } from '../../src/sandbox/banks/index.ts';

export interface GoCardlessEntryOptions {
  name: string;
  /** Default MOORING_STRICT_MSTR0000 (90 days of access at most, 730 of history). */
  institutionId?: string;
  consentDays?: number | null;
  tppConsent?: boolean;
  secretKey?: string;
}

export function goCardlessEntry(urls: { publicUrl: string }, opts: GoCardlessEntryOptions): CatalogEntry {
  const id = createHash('sha256').update(`test-gocardless:${opts.name}`).digest('hex').slice(0, 32);
  const apiUrl = `${urls.publicUrl}${GC_SANDBOX_PREFIX}`;
  return {
    id, name: opts.name, type: 'api', bankRef: id, adapter: 'gocardless', consentDays: opts.consentDays === undefined ? 120 : opts.consentDays,
    tppConsent: opts.tppConsent ?? false, isBeta: false, accountTypes: [{ name: 'cash:current', beta: false }, { name: 'savings', beta: false }],
    userTypes: ['personal'], payments: [], baseUrl: apiUrl, origin: 'file',
    gocardless: {
      apiUrl, secretId: SANDBOX_GC_SECRET_ID, secretKey: opts.secretKey ?? SANDBOX_GC_SECRET_KEY, institutionId: opts.institutionId ?? 'MOORING_STRICT_MSTR0000',
      maxHistoricalDays: 730, accessScope: ['balances', 'details', 'transactions'],
    },
  };
}

/** How many token pairs the counterpart issued through `/token/new/`. */
export async function pairsIssued(db: Queryable): Promise<number> {
  const r = await db.query<{ n: number | string }>("select count(*) as n from sandbox_gc_tokens where kind = 'access' and via = 'new'");
  return Number(r.rows[0]?.n ?? 0);
}

/** The counterpart's requisition behind a connection (its provider_ref), or null when it was deleted. */
export async function requisitionOf(db: Queryable, requisitionId: string): Promise<{ status: string; agreementId: string } | null> {
  const r = await db.query<{ status: string; agreement_id: string }>('select status, agreement_id from sandbox_gc_requisitions where id = $1', [requisitionId]);
  const row = r.rows[0];
  return row === undefined ? null : { status: row.status, agreementId: row.agreement_id };
}

export async function providerRefOf(db: Queryable, connectionId: string): Promise<string> {
  const r = await db.query<{ provider_ref: string }>('select provider_ref from connections where id = $1', [connectionId]);
  return r.rows[0]?.provider_ref ?? '';
}
