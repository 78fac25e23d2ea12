/**
 * Time units and the one strict parser of ISO 8601 date-times that the API accepts. A leaf module:
 * it imports nothing of ours.
 */

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** Strict ISO 8601 date-time with a time zone; anything else (e.g. "tomorrow", 1700000000) is rejected. */
export function parseDateTime(raw: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-](\d{2}):?(\d{2}))$/.exec(raw);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '00'].map(Number) as [number, number, number, number, number, number];
  // Every field must be in range: a date that does not exist (2026-11-31, 25:00) is refused, not rolled over.
  const asUtc = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (asUtc.getUTCFullYear() !== year || asUtc.getUTCMonth() !== month - 1 || asUtc.getUTCDate() !== day
    || asUtc.getUTCHours() !== hour || asUtc.getUTCMinutes() !== minute || asUtc.getUTCSeconds() !== second) return null;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return null;
  const d = new Date(raw);
  return Number.isNaN(d.getTime()) ? null : d;
}
