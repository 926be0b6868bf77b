/**
 * `npm run bench [-- --quick | --tiny] [--out DIR] [--targets floor,socketio,atr,atr-model,atr-nofast]
 * [--only fanout,latency,scopes,memory,inserts] [--clients 1000,5000] [--no-fast-path]`
 *
 * Runs, one after another in one run, the same workloads against the floor
 * (a plain ws loop), Socket.IO with its Redis adapter, and atr, with the same
 * payload, Redis and load generator, and writes JSON, Markdown and an SVG
 * chart to bench/results/ (or --out). Benchmarks, not tests: nothing here
 * asserts a speed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';
import { chart } from './chart';
import { cpuMicrosOf } from './children';
import { runInserts } from './inserts';
import { MODES } from './modes';
import type { Mode } from './modes';
import { payloadBytes } from './payload';
import type { TargetName } from './protocol';
import { checks, markdown } from './results';
import type { Results } from './results';
import { Session } from './session';
import type { BenchEnv } from './session';

interface Args {
  mode: Mode;
  /** The results' file name: the mode's, with `-partial` when flags left something out. */
  name: string;
  out: string;
  targets: TargetName[];
  only: Set<string>;
  fastPath: boolean;
  redisUrl: string;
}

function parseArgs(argv: string[]): Args {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const preset = argv.includes('--tiny') ? MODES.tiny : argv.includes('--quick') ? MODES.quick : MODES.full;
  const clients = value('--clients');
  const mode = clients ? { ...preset, clients: clients.split(',').map(Number) } : preset;
  // A run that leaves part out is written beside the whole runs, never over them.
  const partial = ['--only', '--targets', '--clients', '--no-fast-path'].some((flag) => argv.includes(flag));
  return {
    mode,
    name: partial ? `${mode.name}-partial` : mode.name,
    out: path.resolve(value('--out') ?? path.join(__dirname, 'results')),
    // The full run also shows atr with its fast path off; --quick leaves it out to stay under two minutes.
    targets: (value('--targets') ?? (preset.name === 'full' ? 'floor,socketio,atr,atr-model,atr-nofast' : 'floor,socketio,atr,atr-model')).split(',') as TargetName[],
    only: new Set((value('--only') ?? 'fanout,latency,scopes,memory,inserts').split(',')),
    fastPath: !argv.includes('--no-fast-path'),
    redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  };
}

const interactive = process.stderr.isTTY;
function progress(line: string): void {
  if (interactive) process.stderr.write(`\r\x1b[K${line}`);
  else process.stderr.write(`${line}\n`);
}

async function redisCpuReader(url: string): Promise<() => number> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  const info = await client.info('server');
  await client.quit();
  const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  return () => {
    try {
      return cpuMicrosOf(pid);
    } catch {
      return NaN;
    }
  };
}

/** Deletes every key this run left behind (atr's history streams). */
async function cleanRedis(url: string, prefix: string): Promise<void> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (keys.length) await client.del(keys);
  }
  await client.quit();
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { mode } = args;
  const started = Date.now();
  const prefix = `bench${started.toString(36)}:`;
  const env: BenchEnv = { redisUrl: args.redisUrl, prefix, redisCpu: await redisCpuReader(args.redisUrl), fastPath: args.fastPath };
  const results: Results = {
    meta: {
      mode: mode.name,
      startedAt: new Date(started).toISOString(),
      seconds: 0,
      node: process.version,
      cpus: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      loadavgBefore: os.loadavg(),
      loadavgAfter: [],
      payloadBytes: payloadBytes(),
      frameBytes: {},
      window: mode.window,
      fastPath: args.fastPath,
      notes: [],
    },
    fanout: [],
    latency: [],
    scopes: [],
    memory: [],
    inserts: [],
    errors: [],
  };
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;

  /** Runs `work` in a fresh session of `target`; a failure is recorded and the run goes on. */
  const withSession = async (workload: string, target: TargetName, work: (s: Session) => Promise<void>) => {
    let session: Session | undefined;
    try {
      session = await Session.start(target, env);
      await work(session);
    } catch (err) {
      results.errors.push({ workload, target, message: (err as Error).message });
      progress(`[${elapsed()}] ${workload} ${target}: failed: ${(err as Error).message.split('\n')[0]}`);
      if (interactive) process.stderr.write('\n');
    } finally {
      await session?.close().catch(() => undefined);
    }
  };

  if (args.only.has('fanout') || args.only.has('latency')) {
    for (const clients of mode.clients) {
      for (const target of args.targets) {
        await withSession('fanout', target, async (s) => {
          progress(`[${elapsed()}] fan-out ${target}: connecting ${clients} clients`);
          await s.connect(clients, 1);
          if (args.only.has('fanout')) {
            progress(`[${elapsed()}] fan-out ${target} ${clients} clients: measuring deliveries/s`);
            const r = await s.throughput(clients, 1, mode.warmupMs, mode.durationMs, mode.window);
            results.fanout.push({ target, clients, ...r });
            results.meta.frameBytes[target] = await s.frameBytes();
            progress(`[${elapsed()}] fan-out ${target} ${clients} clients: ${Math.round(r.deliveriesPerSec / 1000)}k deliveries/s, ${r.cpuMicrosPerDelivery.toFixed(2)} µs CPU/delivery`);
          }
          if (args.only.has('latency')) {
            const rate = Math.min(100, mode.latencyDeliveries / clients);
            const r = await s.latency(clients, 1, rate, mode.latencyMs);
            results.latency.push({ target, clients, ...r });
            progress(`[${elapsed()}] latency ${target} ${clients} clients: p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`);
          }
        });
      }
    }
  }

  if (args.only.has('scopes')) {
    for (const scopes of mode.scopes) {
      for (const target of args.targets.filter((t) => t !== 'atr-nofast' && t !== 'atr-model')) {
        await withSession('scopes', target, async (s) => {
          const clients = mode.scopeClients;
          progress(`[${elapsed()}] scopes ${target}: connecting ${clients} clients over ${scopes} scopes`);
          await s.connect(clients, scopes);
          const window = Math.min(1024, mode.window * scopes);
          const r = await s.throughput(clients, scopes, mode.warmupMs, mode.durationMs, window);
          results.scopes.push({ target, clients, scopes, ...r });
          progress(`[${elapsed()}] scopes ${target} ${clients}/${scopes}: ${Math.round(r.deliveriesPerSec / 1000)}k deliveries/s`);
        });
      }
    }
  }

  if (args.only.has('memory')) {
    for (const target of args.targets.filter((t) => t !== 'atr-nofast' && t !== 'atr-model')) {
      await withSession('memory', target, async (s) => {
        progress(`[${elapsed()}] memory ${target}: ${mode.memoryClients} idle clients`);
        const r = await s.memory(mode.memoryClients, 1);
        results.memory.push({ target, clients: mode.memoryClients, ...r });
        progress(`[${elapsed()}] memory ${target}: ${Math.round(r.rssBytesPerConnection)} B RSS / connection`);
      });
    }
  }

  if (args.only.has('inserts') && args.targets.some((t) => t.startsWith('atr'))) {
    try {
      results.inserts = await runInserts(env, mode.insertRows, (line) => progress(`[${elapsed()}] ${line}`));
    } catch (err) {
      results.errors.push({ workload: 'inserts', message: (err as Error).message });
    }
  }

  await cleanRedis(env.redisUrl, prefix).catch(() => undefined);
  results.meta.seconds = (Date.now() - started) / 1000;
  results.meta.loadavgAfter = os.loadavg();
  results.checks = checks(results);
  mkdirSync(args.out, { recursive: true });
  const base = path.join(args.out, args.name);
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(`${base}.md`, markdown(results));
  writeFileSync(`${base}.svg`, chart(results));
  progress(`[${elapsed()}] done: ${base}.{json,md,svg}`);
  process.stderr.write('\n');
  process.stdout.write(markdown(results));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
