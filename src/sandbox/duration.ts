/**
 * ISO 8601 durations (P1Y2M10DT2H30M, P30D, PT90M, P2W) for moving the sandbox clock. Years and
 * months are calendar steps from the given time; weeks, days and time are fixed lengths.
 */
const PATTERN = /^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$/;

/** The time `text` after `from`, or null when `text` is not a duration or the result is not a representable time. */
export function addDuration(from: Date, text: string): Date | null {
  const m = PATTERN.exec(text);
  if (m === null) return null;
  const [, y, mo, w, d, h, min, s] = m;
  const n = (v: string | undefined): number => (v === undefined ? 0 : Number(v.replace(',', '.')));
  const parts = [y, mo, w, d, h, min, s].map(n);
  if (parts.some((p) => !Number.isFinite(p) || p > 1e9)) return null;
  const [years = 0, months = 0, weeks = 0, days = 0, hours = 0, minutes = 0, seconds = 0] = parts;
  const t = new Date(from.getTime());
  if (years !== 0 || months !== 0) {
    const day = t.getUTCDate();
    t.setUTCDate(1);
    t.setUTCMonth(t.getUTCMonth() + years * 12 + months);
    const lastDay = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 0)).getUTCDate();
    t.setUTCDate(Math.min(day, lastDay));
  }
  const ms = t.getTime() + ((((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000;
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms) : null;
}

