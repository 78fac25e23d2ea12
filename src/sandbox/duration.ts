/** ISO 8601 durations of days and time (P30D, PT6H, P1DT12H30M): enough to move the sandbox clock. */
const PATTERN = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

export function parseDurationMs(text: string): number | null {
  const m = PATTERN.exec(text);
  if (m === null || text === 'P' || text.endsWith('T')) return null;
  const [, w, d, h, min, s] = m;
  const n = (v: string | undefined): number => (v === undefined ? 0 : Number(v));
  return (((n(w) * 7 + n(d)) * 24 + n(h)) * 60 + n(min)) * 60_000 + n(s) * 1000;
}
