/**
 * What the GoCardless sandbox counterpart's routes share: GoCardless's error shape and the
 * agreement's end (accepted + access_valid_for_days).
 */
import Type from 'typebox';
import { DAY_MS } from '../../time.ts';
import type { GcAgreementRow } from './gocardless-store.ts';

export const LINK_PREFIX = '/sandbox/gocardless/link';
export const GC_SANDBOX_PREFIX = '/sandbox/gocardless/api/v2';

/** An answer in GoCardless's ErrorResponse shape. */
export class GcError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Record<string, string>;
  constructor(status: number, summary: string, detail: string, opts: { type?: string; headers?: Record<string, string> } = {}) {
    super(summary);
    this.status = status;
    this.body = { summary, detail, ...(opts.type === undefined ? {} : { type: opts.type }), status_code: status };
    this.headers = opts.headers ?? {};
  }
}

export const invalidToken = (): GcError => new GcError(401, 'Invalid token', 'Token is invalid or expired');
export const notFound = (): GcError => new GcError(404, 'Not found.', 'Not found.');
export const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

/** When the agreement's access ends (accepted + access_valid_for_days), or null before acceptance. */
export const agreementEnd = (a: GcAgreementRow): Date | null => (a.acceptedAt === null ? null : new Date(a.acceptedAt.getTime() + a.accessValidForDays * DAY_MS));
