/**
 * One server under test with its clients: the server process, the load
 * generator process and a publisher in the driver. The workloads are methods:
 * closed-loop throughput, latency at a fixed rate, memory per idle connection.
 */
import { Child } from './children';
import { nowMicros, payload } from './payload';
import type { LoadCommand, LoadReply, ServerCommand, ServerReply, TargetName } from './protocol';
import type { Publisher } from './publishers';
import { createPublisher } from './publishers';

export interface BenchEnv {
  redisUrl: string;
  /** Unique per run: every channel and key of this run starts with it. */
  prefix: string;
  /** Reads the Redis server's CPU time (microseconds), when it can. */
  redisCpu: () => number;
  /** atr server options (fast path on or off). */
  fastPath: boolean;
}

export interface ThroughputResult {
  deliveriesPerSec: number;
  /** Server CPU (user + system, all threads) per delivery, microseconds. */
  cpuMicrosPerDelivery: number;
  loadgenCpuMicrosPerDelivery: number;
  publisherCpuMicrosPerDelivery: number;
  redisCpuMicrosPerDelivery: number;
  /** Server CPU use in the window, in cores (1 = one core busy). */
  serverCores: number;
  deliveries: number;
  seconds: number;
  /** Connections the server closed during the run (should be 0). */
  closedByServer: number;
}

export interface LatencyResult {
  rate: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  samples: number;
  expectedSamples: number;
  /** Server CPU per delivery at this rate, where messages come one at a time (no batching). */
  cpuMicrosPerDelivery: number;
}

export interface MemoryResult {
  rssBytesPerConnection: number;
  heapBytesPerConnection: number;
  baselineRss: number;
}

function cpuOfDriver(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/**
 * How often the load generator reads a connection during throughput runs
 * (see loadgen.ts): rarer with more clients, so that a read takes several
 * frames; well below the time the server takes to deliver a window.
 */
function readEveryMs(clients: number): number {
  return Math.max(50, Math.min(1000, Math.round(clients / 10)));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export class Session {
  private frames = 0;
  private closed = 0;
  private onCount: (() => void) | undefined;
  publisher: Publisher | undefined;
  port = 0;

  private constructor(
    readonly target: TargetName,
    readonly server: Child<ServerCommand, ServerReply>,
    readonly load: Child<LoadCommand, LoadReply>,
    readonly env: BenchEnv,
  ) {
    load.on('count', (r) => {
      this.frames = r.frames;
      this.closed = r.closed;
      this.onCount?.();
    });
  }

  /** Starts the server and the load generator (no clients yet). */
  static async start(target: TargetName, env: BenchEnv): Promise<Session> {
    const file = target.startsWith('atr') ? 'atr' : target;
    const server = new Child<ServerCommand, ServerReply>(`servers/${file}.ts`, `${target} server`);
    const load = new Child<LoadCommand, LoadReply>('loadgen.ts', 'load generator');
    const session = new Session(target, server, load, env);
    try {
      const ready = await server.request({ cmd: 'start', options: { redisUrl: env.redisUrl, prefix: env.prefix, fastPath: env.fastPath && target !== 'atr-nofast' } }, 'ready');
      session.port = ready.port;
      session.publisher = await createPublisher(target, env.redisUrl, env.prefix);
    } catch (err) {
      await session.close();
      throw err;
    }
    return session;
  }

  async connect(clients: number, scopes: number): Promise<void> {
    const r = await this.load.request({ cmd: 'connect', target: this.target, port: this.port, clients, scopes }, 'connected', 300_000);
    if (r.failed > 0) throw new Error(`${this.target}: ${r.failed} of ${clients} clients failed to connect (${r.firstError})`);
  }

  /**
   * Publishes as fast as the server delivers, keeping a bounded number of
   * messages published and not yet delivered, so that nothing queues without
   * bound: at least `window`, and more when the server delivers faster than
   * the load generator reports (it reads every readEveryMs), so that a fast
   * server never waits for the next report. Measures over `durationMs`
   * after `warmupMs`.
   */
  async throughput(clients: number, scopes: number, warmupMs: number, durationMs: number, window: number): Promise<ThroughputResult> {
    const publisher = this.publisher!;
    const perMessage = clients / scopes;
    const readEvery = readEveryMs(clients);
    const startFrames = (await this.load.request({ cmd: 'count' }, 'count')).frames;
    let seq = 0;
    let running = true;
    let limit = window;
    const history: Array<[number, number]> = [];
    const pump = () => {
      const delivered = (this.frames - startFrames) / perMessage;
      const now = performance.now();
      history.push([now, delivered]);
      while (history.length > 2 && now - history[0][0] > 1000) history.shift();
      const [t0, d0] = history[0];
      if (now - t0 > 200) {
        const perSecond = ((delivered - d0) * 1000) / (now - t0);
        limit = Math.min(window * 16, Math.max(window, Math.ceil((perSecond * (2 * readEvery + 100)) / 1000)));
      }
      while (running && seq - delivered < limit) {
        const scope = seq % scopes;
        publisher.publish(scope, payload(seq, scope));
        seq++;
      }
    };
    this.onCount = pump;
    this.load.send({ cmd: 'batch', ms: readEvery });
    this.load.send({ cmd: 'watch', intervalMs: 5 });
    pump();
    await sleep(warmupMs);
    const snap = () => ({
      at: nowMicros(),
      frames: this.frames,
      server: this.server.cpuMicros(),
      load: this.load.cpuMicros(),
      driver: cpuOfDriver(),
      redis: this.env.redisCpu(),
    });
    const a = snap();
    await sleep(durationMs);
    const b = snap();
    running = false;
    this.onCount = undefined;
    await publisher.flush();
    await this.drain(startFrames + seq * perMessage);
    this.load.send({ cmd: 'unwatch' });
    this.load.send({ cmd: 'batch', ms: 0 });
    const deliveries = b.frames - a.frames;
    const seconds = (b.at - a.at) / 1e6;
    const per = (x: number) => (deliveries > 0 ? x / deliveries : NaN);
    return {
      deliveriesPerSec: deliveries / seconds,
      cpuMicrosPerDelivery: per(b.server - a.server),
      loadgenCpuMicrosPerDelivery: per(b.load - a.load),
      publisherCpuMicrosPerDelivery: per(b.driver - a.driver),
      redisCpuMicrosPerDelivery: per(b.redis - a.redis),
      serverCores: (b.server - a.server) / (b.at - a.at),
      deliveries,
      seconds,
      closedByServer: this.closed,
    };
  }

  /** Publishes `rate` messages a second for `durationMs`; latency is read on about 100 sampled clients. */
  async latency(clients: number, scopes: number, rate: number, durationMs: number): Promise<LatencyResult> {
    const publisher = this.publisher!;
    const every = Math.max(1, Math.floor(clients / 100));
    const sampled = Math.ceil(clients / every);
    this.load.send({ cmd: 'sample', every });
    const startFrames = (await this.load.request({ cmd: 'count' }, 'count')).frames;
    const count = Math.max(1, Math.round((rate * durationMs) / 1000));
    const cpuBefore = this.server.cpuMicros();
    const started = performance.now();
    for (let seq = 0; seq < count; seq++) {
      const due = started + (seq * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const scope = seq % scopes;
      publisher.publish(scope, payload(seq, scope));
    }
    await publisher.flush();
    await this.drain(startFrames + count * (clients / scopes));
    const cpu = this.server.cpuMicros() - cpuBefore;
    const delivered = (await this.load.request({ cmd: 'count' }, 'count')).frames - startFrames;
    const { micros } = await this.load.request({ cmd: 'latencies' }, 'latencies');
    this.load.send({ cmd: 'sample', every: 0 });
    const sorted = micros.sort((x, y) => x - y);
    return {
      rate,
      p50Ms: percentile(sorted, 50) / 1000,
      p99Ms: percentile(sorted, 99) / 1000,
      maxMs: sorted.length ? sorted[sorted.length - 1] / 1000 : NaN,
      samples: sorted.length,
      expectedSamples: Math.round((count * sampled) / scopes),
      cpuMicrosPerDelivery: delivered > 0 ? cpu / delivered : NaN,
    };
  }

  /** RSS and heap per idle connection: after a full GC, before and after `clients` connect. */
  async memory(clients: number, scopes: number): Promise<MemoryResult> {
    const before = await this.server.request({ cmd: 'memory' }, 'memory');
    await this.connect(clients, scopes);
    await sleep(1000);
    const after = await this.server.request({ cmd: 'memory' }, 'memory');
    return {
      rssBytesPerConnection: (after.rss - before.rss) / clients,
      heapBytesPerConnection: (after.heapUsed + after.external - before.heapUsed - before.external) / clients,
      baselineRss: before.rss,
    };
  }

  /** Average payload bytes of the frames delivered so far. */
  async frameBytes(): Promise<number> {
    const { frames, bytes } = await this.load.request({ cmd: 'count' }, 'count');
    return frames ? Math.round(bytes / frames) : NaN;
  }

  /** Waits until `expected` frames arrived, or until none arrived for a while. */
  private async drain(expected: number): Promise<void> {
    let last = -1;
    let still = 0;
    for (;;) {
      const { frames } = await this.load.request({ cmd: 'count' }, 'count');
      if (frames >= expected) return;
      if (frames === last) {
        if (++still >= 10) return;
      } else {
        still = 0;
      }
      last = frames;
      await sleep(100);
    }
  }

  async close(): Promise<void> {
    this.onCount = undefined;
    await this.publisher?.close().catch(() => undefined);
    await this.load.end({ cmd: 'close' }, 'closed');
    await this.server.end({ cmd: 'stop' }, 'stopped');
  }
}
