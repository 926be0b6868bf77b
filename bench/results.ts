/**
 * The results of a run, the ratios the issue asks for (atr / floor, atr /
 * Socket.IO), the targets checked against them, and the Markdown report.
 */
import type { LatencyResult, MemoryResult, ThroughputResult } from './session';
import type { TargetName } from './protocol';

export interface Results {
  meta: {
    mode: string;
    startedAt: string;
    seconds: number;
    node: string;
    cpus: string;
    cores: number;
    loadavgBefore: number[];
    loadavgAfter: number[];
    payloadBytes: number;
    frameBytes: Partial<Record<TargetName, number>>;
    window: number;
    fastPath: boolean;
    notes: string[];
  };
  fanout: Array<{ target: TargetName; clients: number } & ThroughputResult>;
  latency: Array<{ target: TargetName; clients: number } & LatencyResult>;
  scopes: Array<{ target: TargetName; clients: number; scopes: number } & ThroughputResult>;
  memory: Array<{ target: TargetName; clients: number } & MemoryResult>;
  inserts: Array<{ database: string; variant: string; rows: number; insertsPerSec: number; publishedPerSec?: number }>;
  errors: Array<{ workload: string; target?: string; message: string }>;
  checks?: Check[];
}

export interface Check {
  goal: string;
  value: number | null;
  limit: number;
  /** 'min': value must be at least limit; 'max': at most. */
  kind: 'min' | 'max';
  met: boolean | null;
}

const TARGET_LABEL: Record<TargetName, string> = { floor: 'floor (ws loop)', socketio: 'Socket.IO', atr: 'atr', 'atr-nofast': 'atr, fast path off', 'atr-model': 'atr, model inserts' };

function find<T extends { target: TargetName }>(rows: T[], target: TargetName, match: (r: T) => boolean): T | undefined {
  return rows.find((r) => r.target === target && match(r));
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

/** The issue's targets, at 5k clients (or the largest size run when 5k was not). */
export function checks(results: Results): Check[] {
  const sizes = [...new Set(results.fanout.map((r) => r.clients))];
  const at = sizes.includes(5000) ? 5000 : Math.max(...sizes);
  const f = (t: TargetName) => find(results.fanout, t, (r) => r.clients === at);
  const l = (t: TargetName) => find(results.latency, t, (r) => r.clients === at);
  const m = (t: TargetName) => find(results.memory, t, () => true);
  const plain = results.inserts.filter((r) => r.variant === 'plain');
  const check = (goal: string, value: number | null, limit: number, kind: 'min' | 'max'): Check => ({
    goal,
    value,
    limit,
    kind,
    met: value === null ? null : kind === 'min' ? value >= limit : value <= limit,
  });
  const list = [
    check(`deliveries/s atr / floor at ${at} clients`, ratio(f('atr')?.deliveriesPerSec, f('floor')?.deliveriesPerSec), 1.3, 'min'),
    check(`deliveries/s atr / Socket.IO at ${at} clients`, ratio(f('atr')?.deliveriesPerSec, f('socketio')?.deliveriesPerSec), 1.2, 'min'),
    check(`server CPU per delivery atr / floor at ${at} clients`, ratio(f('atr')?.cpuMicrosPerDelivery, f('floor')?.cpuMicrosPerDelivery), 0.7, 'max'),
    check(`p99 latency atr / floor at ${at} clients`, ratio(l('atr')?.p99Ms, l('floor')?.p99Ms), 1.0, 'max'),
    check('memory per idle connection atr / floor', ratio(m('atr')?.rssBytesPerConnection, m('floor')?.rssBytesPerConnection), 1.1, 'max'),
  ];
  for (const p of plain) {
    const pub = results.inserts.find((r) => r.database === p.database && r.variant === 'publishable');
    list.push(check(`inserts/s Publishable (Redis) / plain, ${p.database}`, ratio(pub?.insertsPerSec, p.insertsPerSec), 0.9, 'min'));
    const returning = results.inserts.find((r) => r.database === p.database && r.variant === RETURNING_VARIANT);
    // publishFromReturning applies to PostgreSQL only: elsewhere there is no such run.
    if (returning) list.push(check(`inserts/s Publishable with publishFromReturning (Redis) / plain, ${p.database}`, ratio(returning?.insertsPerSec, p.insertsPerSec), 0.9, 'min'));
  }
  return list;
}

/** The insert variant of a model that sets publishFromReturning. */
export const RETURNING_VARIANT = 'publishable, publishFromReturning';

/** Below this many cores the server was not the bottleneck of a throughput run. */
const UNSATURATED = 0.8;

const n = (x: number | null | undefined, digits = 0) =>
  x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const k = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : `${n(x / 1000, 0)}k`);
const r2 = (x: number | null) => (x === null ? '–' : `${n(x, 2)}×`);

export function markdown(results: Results): string {
  const { meta } = results;
  const out: string[] = [];
  out.push(`# atr benchmark (${meta.mode})`, '');
  out.push(
    `${meta.startedAt}, ${meta.seconds.toFixed(0)} s; Node ${meta.node}; ${meta.cores} × ${meta.cpus}; ` +
      `load average before ${meta.loadavgBefore.map((x) => x.toFixed(2)).join(' ')}, after ${meta.loadavgAfter.map((x) => x.toFixed(2)).join(' ')}.`,
    '',
    `Payload ${meta.payloadBytes} bytes of JSON; frames on the wire: ` +
      Object.entries(meta.frameBytes).map(([t, b]) => `${TARGET_LABEL[t as TargetName]} ${b} B`).join(', ') +
      `. Closed loop: at most ${meta.window} messages published and not yet delivered. atr fast path: ${meta.fastPath ? 'on' : 'off'}.`,
    '',
  );
  const list = results.checks ?? checks(results);
  out.push('## Targets', '', '| goal | measured | target | met |', '|---|---|---|---|');
  for (const c of list) out.push(`| ${c.goal} | ${r2(c.value)} | ${c.kind === 'min' ? '≥' : '≤'} ${c.limit} | ${c.met === null ? 'not measured' : c.met ? 'yes' : 'no'} |`);
  out.push('');

  const targets: TargetName[] = ['floor', 'socketio', 'atr', 'atr-model', 'atr-nofast'];
  const sizes = [...new Set(results.fanout.map((r) => r.clients))];
  out.push('## Fan-out of one scope', '', '| clients | target | deliveries/s | server µs CPU / delivery | server cores | load generator µs / delivery | atr / floor | atr / Socket.IO |', '|---|---|---|---|---|---|---|---|');
  for (const clients of sizes) {
    const atr = find(results.fanout, 'atr', (r) => r.clients === clients);
    for (const t of targets) {
      const row = find(results.fanout, t, (r) => r.clients === clients);
      if (!row) continue;
      const vsFloor = t === 'atr' ? r2(ratio(atr?.deliveriesPerSec, find(results.fanout, 'floor', (r) => r.clients === clients)?.deliveriesPerSec)) : '';
      const vsSio = t === 'atr' ? r2(ratio(atr?.deliveriesPerSec, find(results.fanout, 'socketio', (r) => r.clients === clients)?.deliveriesPerSec)) : '';
      out.push(`| ${n(clients)} | ${TARGET_LABEL[t]} | ${k(row.deliveriesPerSec)}${row.serverCores < UNSATURATED ? ' *' : ''} | ${n(row.cpuMicrosPerDelivery, 2)} | ${n(row.serverCores, 2)} | ${n(row.loadgenCpuMicrosPerDelivery, 2)} | ${vsFloor} | ${vsSio} |`);
    }
  }
  out.push('', `\\* The server used less than ${UNSATURATED} of a core: something else (the publisher, Redis, the load generator's reports, other load on the machine) held it back, so its figure is a lower bound.`, '');
  out.push('## Publish-to-receive latency at a fixed rate', '', '| clients | target | messages/s | p50 ms | p99 ms | max ms | samples | server µs CPU / delivery |', '|---|---|---|---|---|---|---|---|');
  for (const row of results.latency) out.push(`| ${n(row.clients)} | ${TARGET_LABEL[row.target]} | ${n(row.rate, 1)} | ${n(row.p50Ms, 2)} | ${n(row.p99Ms, 2)} | ${n(row.maxMs, 2)} | ${row.samples}/${row.expectedSamples} | ${n(row.cpuMicrosPerDelivery, 2)} |`);
  out.push('');
  out.push('## Many scopes', '', '| clients | scopes | target | deliveries/s | server µs CPU / delivery | atr / floor | atr / Socket.IO |', '|---|---|---|---|---|---|---|');
  for (const row of results.scopes) {
    const same = (t: TargetName) => find(results.scopes, t, (r) => r.scopes === row.scopes && r.clients === row.clients)?.deliveriesPerSec;
    const isAtr = row.target === 'atr';
    out.push(`| ${n(row.clients)} | ${n(row.scopes)} | ${TARGET_LABEL[row.target]} | ${k(row.deliveriesPerSec)}${row.serverCores < UNSATURATED ? ' *' : ''} | ${n(row.cpuMicrosPerDelivery, 2)} | ${isAtr ? r2(ratio(same('atr'), same('floor'))) : ''} | ${isAtr ? r2(ratio(same('atr'), same('socketio'))) : ''} |`);
  }
  out.push('');
  out.push('## Memory per idle connection', '', '| clients | target | RSS bytes / connection | heap + external bytes / connection |', '|---|---|---|---|');
  for (const row of results.memory) out.push(`| ${n(row.clients)} | ${TARGET_LABEL[row.target]} | ${n(row.rssBytesPerConnection)} | ${n(row.heapBytesPerConnection)} |`);
  out.push('');
  if (results.inserts.length) {
    out.push('## Model inserts', '', '| database | model | rows | inserts/s |', '|---|---|---|---|');
    for (const row of results.inserts) out.push(`| ${row.database} | ${row.variant} | ${row.rows} | ${n(row.insertsPerSec)} |`);
    out.push('');
  }
  if (meta.notes.length || results.errors.length) {
    out.push('## Notes', '');
    for (const note of meta.notes) out.push(`- ${note}`);
    for (const e of results.errors) out.push(`- ${e.workload}${e.target ? ` (${e.target})` : ''} failed: ${e.message.split('\n')[0]}`);
    out.push('');
  }
  return out.join('\n');
}
