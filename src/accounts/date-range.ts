/**
 * The startDate/endDate filters of GET /transactions. Each is a day (YYYY-MM-DD: the whole UTC day)
 * or an ISO 8601 date-time (UTC when it has no offset); both bounds are inclusive.
 */
import { badRequest } from '../errors.ts';
import { DAY_MS, MINUTE_MS } from '../time.ts';

const BOUND = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?$/i;

export interface DateRange {
  /** Earliest instant included, or null for no lower bound. */
  from: Date | null;
  /** Latest instant included (stored times have millisecond precision), or null for no upper bound. */
  to: Date | null;
}

const invalid = (field: string, problem: string) =>
  badRequest('invalid_request', `Invalid querystring: ${field} ${problem}`, [{ field, problem }]);

/** Parses one bound; a day means its first millisecond as a start and its last as an end. */
export function parseDateBound(field: string, value: string, edge: 'start' | 'end'): Date {
  const m = BOUND.exec(value.trim());
  if (m === null) throw invalid(field, 'must be a date (YYYY-MM-DD) or an ISO 8601 date-time');
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((x) => (x === undefined ? 0 : Number(x))) as [number, number, number, number, number, number];
  const ms = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const check = new Date(local);
  const real = check.getUTCFullYear() === year && check.getUTCMonth() === month - 1 && check.getUTCDate() === day
    && hour < 24 && minute < 60 && second < 60;
  if (!real) throw invalid(field, 'is not a real date or time');
  if (m[4] === undefined) return new Date(edge === 'start' ? local : local + DAY_MS - 1);
  const offset = m[8];
  if (offset === undefined || offset.toUpperCase() === 'Z') return check;
  const sign = offset.startsWith('-') ? -1 : 1;
  const offsetHours = Number(offset.slice(1, 3));
  const offsetMinutes = Number(offset.slice(4, 6));
  if (offsetHours > 23 || offsetMinutes > 59) throw invalid(field, 'has an impossible UTC offset');
  return new Date(local - sign * (offsetHours * 60 + offsetMinutes) * MINUTE_MS);
}

export function parseDateRange(q: { startDate?: string; endDate?: string }): DateRange {
  const from = q.startDate === undefined ? null : parseDateBound('startDate', q.startDate, 'start');
  const to = q.endDate === undefined ? null : parseDateBound('endDate', q.endDate, 'end');
  if (from !== null && to !== null && from.getTime() > to.getTime()) throw invalid('startDate', 'is after endDate');
  return { from, to };
}
