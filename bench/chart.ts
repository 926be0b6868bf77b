/**
 * An SVG chart of a run, drawn by hand (no dependency): deliveries per second
 * against clients on the left, p99 latency against clients on the right, one
 * line per target.
 */
import type { TargetName } from './protocol';
import type { Results } from './results';

const COLORS: Record<TargetName, string> = { floor: '#888888', socketio: '#d9822b', atr: '#2b6cd9', 'atr-nofast': '#9bb8ec', 'atr-model': '#1f4e9e' };
const LABELS: Record<TargetName, string> = { floor: 'floor (ws loop)', socketio: 'Socket.IO', atr: 'atr', 'atr-nofast': 'atr, fast path off', 'atr-model': 'atr, model inserts' };
const W = 380;
const H = 240;
const PAD = { left: 64, right: 28, top: 36, bottom: 44 };

interface Series {
  target: TargetName;
  points: Array<[number, number]>;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

/** One chart; `log`: a logarithmic y axis (throughputs that differ by orders of magnitude). */
function panel(title: string, unit: (v: number) => string, series: Series[], xs: number[], offsetX: number, log = false): string {
  const values = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0);
  const maxY = log ? 10 ** Math.ceil(Math.log10(Math.max(10, ...values))) : niceMax(Math.max(0, ...values));
  const minY = log ? Math.min(maxY / 10, 10 ** Math.floor(Math.log10(Math.min(maxY, ...values)))) : 0;
  const minX = Math.min(...xs);
  const maxX = Math.max(...xs);
  const px = (x: number) => PAD.left + (maxX === minX ? 0.5 : (x - minX) / (maxX - minX)) * (W - PAD.left - PAD.right);
  const share = (y: number) => (log ? (Math.log10(Math.max(y, minY)) - Math.log10(minY)) / (Math.log10(maxY) - Math.log10(minY)) : y / maxY);
  const py = (y: number) => H - PAD.bottom - share(y) * (H - PAD.top - PAD.bottom);
  const parts: string[] = [`<g transform="translate(${offsetX},0)">`];
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  const ticks: number[] = [];
  if (log) for (let y = minY; y <= maxY * 1.001; y *= 10) ticks.push(y);
  else for (let i = 0; i <= 4; i++) ticks.push((maxY * i) / 4);
  for (const y of ticks) {
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${py(y)}" y2="${py(y)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${py(y) + 4}" text-anchor="end">${esc(unit(y))}</text>`);
  }
  for (const x of xs) parts.push(`<text x="${px(x)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${x.toLocaleString('en-US')}</text>`);
  parts.push(`<text x="${W / 2}" y="${H - 8}" text-anchor="middle">clients</text>`);
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map(([x, y], i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${COLORS[s.target]}" stroke-width="2.5"/>`);
    for (const [x, y] of s.points) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3.5" fill="${COLORS[s.target]}"/>`);
  }
  parts.push('</g>');
  return parts.join('\n');
}

export function chart(results: Results): string {
  const targets = (['floor', 'socketio', 'atr', 'atr-model', 'atr-nofast'] as TargetName[]).filter((t) => results.fanout.some((r) => r.target === t));
  const xs = [...new Set(results.fanout.map((r) => r.clients))].sort((a, b) => a - b);
  const series = (rows: Array<{ target: TargetName; clients: number }>, value: (r: never) => number): Series[] =>
    targets.map((target) => ({
      target,
      points: rows
        .filter((r) => r.target === target && Number.isFinite(value(r as never)))
        .map((r) => [r.clients, value(r as never)] as [number, number])
        .sort((a, b) => a[0] - b[0]),
    }));
  const rate = (v: number) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1000 ? `${v / 1000}k` : `${v}`);
  const left = panel('Deliveries per second, one scope (log scale)', rate, series(results.fanout, (r: { deliveriesPerSec: number }) => r.deliveriesPerSec), xs, 0, true);
  const right = panel(`p99 latency at ${Math.round((results.latency[0]?.rate ?? 0) * (results.latency[0]?.clients ?? 0) / 1000)}k deliveries/s`, (v) => `${v.toFixed(v < 10 ? 1 : 0)} ms`, series(results.latency, (r: { p99Ms: number }) => r.p99Ms), xs, W);
  const legend = targets
    .map((t, i) => `<g transform="translate(${12 + i * 150},${H + 14})"><rect width="14" height="4" y="-6" fill="${COLORS[t]}"/><text x="20">${esc(LABELS[t])}</text></g>`)
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 28}" viewBox="0 0 ${2 * W} ${H + 28}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    left,
    right,
    legend,
    '</svg>',
    '',
  ].join('\n');
}
