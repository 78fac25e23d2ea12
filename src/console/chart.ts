/**
 * A provider's health as a server-rendered SVG (no script): one column per hour, successful syncs
 * in green under failed ones in red, and the hour's p95 call latency as a line on its own scale.
 */
import { escapeHtml } from '../web/html.ts';

export interface ChartBucket {
  hour: string;
  syncs: number;
  successes: number;
  p95LatencyMs: number | null;
}

const W = 860;
const H = 220;
const PAD = { left: 40, right: 56, top: 16, bottom: 28 };

/** A round top for an axis (1, 2, 5 × 10^n) at or above `max`. */
export function niceCeiling(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

export function healthChartSvg(buckets: ChartBucket[], title: string): string {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const n = Math.max(1, buckets.length);
  const colW = plotW / n;
  const maxSyncs = niceCeiling(Math.max(0, ...buckets.map((b) => b.syncs)));
  const maxLatency = niceCeiling(Math.max(0, ...buckets.map((b) => b.p95LatencyMs ?? 0)));
  const y = (v: number): number => PAD.top + plotH - (v / maxSyncs) * plotH;
  const yLat = (v: number): number => PAD.top + plotH - (v / maxLatency) * plotH;
  const f = (v: number): string => v.toFixed(1);

  const bars = buckets.map((b, i) => {
    const x = PAD.left + i * colW;
    const failures = Math.max(0, b.syncs - b.successes);
    const ok = b.syncs === 0 ? '' : `<rect x="${f(x)}" y="${f(y(b.successes))}" width="${f(Math.max(1, colW - 1))}" height="${f(y(0) - y(b.successes))}" fill="#3a9a4f"/>`;
    const bad = failures === 0 ? '' : `<rect x="${f(x)}" y="${f(y(b.syncs))}" width="${f(Math.max(1, colW - 1))}" height="${f(y(b.successes) - y(b.syncs))}" fill="#c0392b"/>`;
    return ok + bad;
  }).join('');
  const points = buckets.map((b, i) => (b.p95LatencyMs === null ? null : `${f(PAD.left + (i + 0.5) * colW)},${f(yLat(b.p95LatencyMs))}`)).filter((p): p is string => p !== null);
  const dots = points.map((p) => {
    const [cx, cy] = p.split(',');
    return `<circle cx="${cx}" cy="${cy}" r="2" fill="#1f5fa8"/>`;
  }).join('');
  const latency = points.length === 0 ? '' : `<polyline points="${points.join(' ')}" fill="none" stroke="#1f5fa8" stroke-width="1.5"/>${dots}`;
  // A date label at each day's start (UTC midnight).
  const days = buckets.map((b, i) => ({ b, i })).filter(({ b }) => b.hour.slice(11, 13) === '00')
    .map(({ b, i }) => `<text x="${f(PAD.left + i * colW)}" y="${H - 8}" font-size="11" fill="#5b6773">${escapeHtml(b.hour.slice(5, 10))}</text>`).join('');
  const total = buckets.reduce((a, b) => a + b.syncs, 0);
  const failed = buckets.reduce((a, b) => a + b.syncs - b.successes, 0);
  const desc = `${total} syncs in ${buckets.length} hours, ${failed} failed; p95 latency up to ${maxLatency} ms on the right-hand scale.`;
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-labelledby="chart-title chart-desc" style="background:white;border:1px solid #dde3e8;max-width:${W}px">
<title id="chart-title">${escapeHtml(title)}</title><desc id="chart-desc">${escapeHtml(desc)}</desc>
<line x1="${PAD.left}" y1="${y(0)}" x2="${W - PAD.right}" y2="${y(0)}" stroke="#889"/>
<text x="4" y="${PAD.top + 10}" font-size="11" fill="#5b6773">${maxSyncs}</text><text x="4" y="${y(0)}" font-size="11" fill="#5b6773">0</text>
<text x="${W - PAD.right + 4}" y="${PAD.top + 10}" font-size="11" fill="#1f5fa8">${maxLatency} ms</text>
${bars}${latency}${days}
</svg>`;
}
