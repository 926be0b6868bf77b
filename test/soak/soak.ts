/**
 * `npm run soak`: holds thousands of websocket connections on loopback for a
 * bounded time, with churn (clients that leave cleanly, vanish, give up
 * mid-handshake, come back) and garbage (malformed and unknown messages,
 * binary frames, frames over maxPayload, floods over the rate limit, clients
 * that never read, clients that stop answering pings), while events are
 * published. The server runs in a child process so that its memory is its
 * own. Prints what it saw; exits 1 if the server crashed or kept anything
 * (connections, subscriptions) after the clients left.
 *
 *   npm run soak -- --connections 3000 --seconds 30 [--redis redis://127.0.0.1:6379]
 *
 * Not part of `npm test`.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import express from 'express';
import expressWs from 'express-ws';
import { WebSocket } from 'ws';
import { RequestAuthenticator, RequestScope, atrRouter, createAtr } from '../../src/index';
import { silentLogger } from '../../src/logger';

interface Settings {
  connections: number;
  seconds: number;
  churnPerSecond: number;
  garbagePerSecond: number;
  publishPerSecond: number;
  organizations: number;
  redis: string | undefined;
}

function settings(argv: string[]): Settings {
  const arg = (name: string, fallback: string | undefined) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : (process.env[`SOAK_${name.toUpperCase().replace(/-/g, '_')}`] || fallback);
  };
  return {
    connections: Number(arg('connections', '3000')),
    seconds: Number(arg('seconds', '30')),
    churnPerSecond: Number(arg('churn', '100')),
    garbagePerSecond: Number(arg('garbage', '50')),
    publishPerSecond: Number(arg('publish', '100')),
    organizations: Number(arg('organizations', '50')),
    redis: arg('redis', undefined),
  };
}

// ---------------------------------------------------------------- server side

interface ServerReport {
  memory: NodeJS.MemoryUsage;
  metrics: Record<string, number>;
  subscriptions: number;
  reactors: number;
  errorsReported: number;
}

async function runServer(): Promise<void> {
  const s = settings(process.argv);

  class SoakAuthenticator extends RequestAuthenticator {
    override async matches(): Promise<boolean> {
      await new Promise((resolve) => setImmediate(resolve));  // as a lookup would
      this.user = { token: this.params.token };
      return this.params.token === 'ok';
    }
  }
  class SoakScope extends RequestScope {
    override routingKey(): string {
      return this.scopeKey('organization', this.segments[1] ?? '');
    }

    override valid(): boolean {
      return this.segments[0] === 'organization' && this.segments[1] !== 'forbidden';
    }
  }

  let errorsReported = 0;
  const atr = createAtr({
    broker: s.redis ?? 'memory',
    channelPrefix: `atr-soak-${process.pid}:`,
    authenticateWith: SoakAuthenticator,
    scopeWith: SoakScope,
    logger: silentLogger,
    onError: () => { errorsReported++; },
    heartbeatInterval: 5000,
    maxPayload: 64 * 1024,
    maxBufferedBytes: 256 * 1024,
    maxClientMessagesPerSecond: 20,
    historyMaxLength: 100,
  });
  await atr.connect();
  const app = express();
  expressWs(app as any);
  const router = atrRouter(atr);
  app.use('/ws', router as any);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  server.maxConnections = s.connections * 3;

  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  const report = (): ServerReport => {
    gc();
    return {
      memory: process.memoryUsage(),
      metrics: { ...router.hub.metrics },
      subscriptions: atr.broker.subscriptions().length,
      reactors: router.hub.size,
      errorsReported,
    };
  };

  let publishing: NodeJS.Timeout | undefined;
  const pad = 'e'.repeat(300);
  const blob = 'f'.repeat(32 * 1024);
  process.on('message', async (message: { type: string }) => {
    if (message.type === 'report') process.send!({ type: 'report', report: report() });
    if (message.type === 'publish') {
      let n = 0;
      const perTick = Math.max(1, Math.round(s.publishPerSecond / 20));
      publishing = setInterval(() => {
        for (let i = 0; i < perTick; i++) {
          const org = n++ % s.organizations;
          atr.publish({ scope: `organization.${org}`, name: 'soak.event', data: { n, pad } }).catch(() => undefined);
        }
        // 1.3 MB/s to the clients that stop reading: they pass maxBufferedBytes and get 1013.
        if (router.hub.channelNames().includes(atr.channelOf('organization.firehose'))) {
          for (let i = 0; i < 2; i++) atr.publish({ scope: 'organization.firehose', name: 'soak.blob', data: { blob } }).catch(() => undefined);
        }
      }, 50);
    }
    if (message.type === 'stop-publishing' && publishing) clearInterval(publishing);
    if (message.type === 'close') {
      await router.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await atr.close();
      process.send!({ type: 'closed' });
      process.disconnect();
    }
  });
  process.send!({ type: 'listening', port: (server.address() as AddressInfo).port, start: report() });
}

// ---------------------------------------------------------------- client side

class Tally {
  counts = new Map<string, number>();
  add(key: string, n = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)));
  }
}

async function runClients(): Promise<void> {
  const s = settings(process.argv.slice(2));
  const child: ChildProcess = fork(__filename, ['server', ...process.argv.slice(2)], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let crashed = false;
  child.on('exit', (code, signal) => {
    if (code !== 0 || signal) crashed = true;
  });
  const ask = <T>(type: string, answer: string): Promise<T> => new Promise((resolve) => {
    const on = (m: { type: string } & Record<string, unknown>) => {
      if (m.type === answer) {
        child.off('message', on);
        resolve(m as T);
      }
    };
    child.on('message', on);
    if (type) child.send({ type });
  });
  const { port, start } = await ask<{ port: number; start: ServerReport }>('', 'listening');
  const base = `ws://127.0.0.1:${port}/ws`;

  const closeCodes = new Tally();
  const refusals = new Tally();
  const actions = new Tally();
  let clientErrors = 0;
  let eventsReceived = 0;
  let opened = 0;
  let peak = 0;
  const live = new Set<WebSocket>();

  const open = (org: number | string, options: { token?: string; autoPong?: boolean } = {}): Promise<WebSocket | undefined> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`${base}/organization/${org}?token=${options.token ?? 'ok'}`, { autoPong: options.autoPong ?? true });
      let settled = false;
      const done = (value: WebSocket | undefined) => {
        if (!settled) {
          settled = true;
          resolve(value);
        }
      };
      ws.on('message', (data) => {
        const text = String(data);
        if (text.startsWith('{"name":"atr.ready"')) {
          opened++;
          live.add(ws);
          peak = Math.max(peak, live.size);
          done(ws);
        } else if (!text.startsWith('{"name":"atr.')) {
          eventsReceived++;
        }
      });
      let refused = false;
      ws.on('unexpected-response', (_req, res) => {
        refused = true;
        refusals.add(String(res.statusCode));
        res.resume();
        ws.terminate();
        done(undefined);
      });
      ws.on('error', () => {
        if (!refused) clientErrors++;
        done(undefined);
      });
      ws.on('close', (code) => {
        live.delete(ws);
        closeCodes.add(String(code));
        done(undefined);
      });
    });

  const pick = (): WebSocket | undefined => {
    const i = Math.floor(Math.random() * live.size);
    let k = 0;
    for (const ws of live) if (k++ === i) return ws;
    return undefined;
  };
  const org = () => Math.floor(Math.random() * s.organizations);

  console.log(`soak: ${s.connections} connections for ${s.seconds} s on 127.0.0.1:${port} (${s.redis ? `Redis ${s.redis}` : 'memory broker'})`);
  const started = Date.now();
  for (let i = 0; i < s.connections; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, s.connections - i) }, () => open(org())));
  }
  console.log(`soak: ${live.size} connections open after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  child.send({ type: 'publish' });

  const churn = async () => {
    const ws = pick();
    const kind = Math.floor(Math.random() * 6);
    switch (kind) {
      case 0: actions.add('close'); ws?.close(); break;
      case 1: actions.add('vanish'); ws?.terminate(); break;
      case 2: {
        actions.add('abort-mid-handshake');
        const early = new WebSocket(`${base}/organization/${org()}?token=ok`);
        early.on('error', () => undefined);
        setTimeout(() => early.terminate(), Math.random() * 5);
        return;
      }
      case 3: actions.add('refused-401'); await open(org(), { token: 'bad' }); return;
      case 4: {
        actions.add('refused-403');
        const ws403 = new WebSocket(`${base}/organization/forbidden?token=ok`);
        ws403.on('error', () => undefined);
        ws403.on('unexpected-response', (_req, res) => { refusals.add(String(res.statusCode)); res.resume(); ws403.terminate(); });
        return;
      }
      default: actions.add('reconnect'); ws?.close(); break;
    }
    if (live.size < s.connections) await open(org());
  };

  const garbage = async () => {
    const ws = pick();
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const kind = Math.floor(Math.random() * 8);
    switch (kind) {
      case 0: actions.add('garbage-text'); ws.send('}{ not json'); break;
      case 1: actions.add('garbage-unknown-type'); ws.send('{"type":"subscribe","scope":"*"}'); break;
      case 2: actions.add('garbage-binary'); ws.send(Buffer.from([0, 1, 2, 3])); break;
      case 3: actions.add('garbage-oversized'); ws.send('x'.repeat(100 * 1024)); break;
      case 4: actions.add('garbage-flood'); for (let i = 0; i < 50; i++) ws.send('{"type":"ping"}'); break;
      case 5: {
        actions.add('never-reads');
        const firehose = await open('firehose');
        if (firehose) {
          live.delete(firehose);  // the server must cut it off
          (firehose as unknown as { _socket: { pause(): void } })._socket.pause();
        }
        break;
      }
      case 6: {
        actions.add('stops-answering-pings');
        live.delete(ws);
        ws.terminate();
        const mute = await open(org(), { autoPong: false });
        if (mute) live.delete(mute);  // the server must find it
        break;
      }
      default: actions.add('ping'); ws.send('{"type":"ping"}');
    }
    if (live.size < s.connections) await open(org());
  };

  const reports: ServerReport[] = [];
  const until = Date.now() + s.seconds * 1000;
  let nextLog = Date.now() + 5000;
  while (Date.now() < until && !crashed) {
    const tick = Date.now();
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < s.churnPerSecond / 10; i++) jobs.push(churn());
    for (let i = 0; i < s.garbagePerSecond / 10; i++) jobs.push(garbage());
    await Promise.all(jobs);
    if (Date.now() >= nextLog) {
      nextLog += 5000;
      const { report } = await ask<{ report: ServerReport }>('report', 'report');
      reports.push(report);
      console.log(`soak: t=${((Date.now() - started) / 1000).toFixed(0)} s  clients open ${live.size}  server reactors ${report.reactors}  subscriptions ${report.subscriptions}  rss ${mib(report.memory.rss)}  heap ${mib(report.memory.heapUsed)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 100 - (Date.now() - tick))));
  }

  child.send({ type: 'stop-publishing' });
  const beforeLeave = (await ask<{ report: ServerReport }>('report', 'report')).report;
  // Everybody leaves (the paused ones are cut off by the server or here).
  const all = [...live];
  for (const ws of all) ws.close();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  for (const ws of all) ws.terminate();
  // The silent ones are the server's to find: two heartbeat intervals.
  let end = (await ask<{ report: ServerReport }>('report', 'report')).report;
  for (let i = 0; i < 75 && (end.reactors > 0 || end.subscriptions > 0 || end.metrics.handshakesPending! > 0); i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    end = (await ask<{ report: ServerReport }>('report', 'report')).report;
  }
  const peakRss = Math.max(...reports.map((r) => r.memory.rss), beforeLeave.memory.rss);
  await ask('close', 'closed');

  const leftovers = end.reactors + end.subscriptions + (end.metrics.handshakesPending ?? 0);
  console.log('\nsoak report');
  console.log(JSON.stringify({
    seconds: s.seconds,
    connectionsOpened: opened,
    peakOpenConnections: peak,
    openAtEnd: { clients: live.size, serverReactors: end.reactors, serverSubscriptions: end.subscriptions, handshakesPending: end.metrics.handshakesPending },
    eventsReceivedByClients: eventsReceived,
    actions: actions.toJSON(),
    refusals: refusals.toJSON(),
    closeCodesSeenByClients: closeCodes.toJSON(),
    clientSideErrors: clientErrors,
    serverErrorsReported: end.errorsReported,
    serverMetrics: end.metrics,
    serverMemory: {
      start: { rss: mib(start.memory.rss), heapUsed: mib(start.memory.heapUsed) },
      peakRss: mib(peakRss),
      loaded: { rss: mib(beforeLeave.memory.rss), heapUsed: mib(beforeLeave.memory.heapUsed) },
      end: { rss: mib(end.memory.rss), heapUsed: mib(end.memory.heapUsed) },
    },
    serverCrashed: crashed,
  }, null, 2));
  const ok = !crashed && leftovers === 0;
  console.log(ok ? 'soak: ok' : `soak: FAILED (${crashed ? 'server crashed' : `${leftovers} connections/subscriptions left`})`);
  process.exit(ok ? 0 : 1);
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

if (process.argv[2] === 'server') {
  runServer().catch((err) => {
    console.error('soak server failed', err);
    process.exit(1);
  });
} else {
  runClients().catch((err) => {
    console.error('soak failed', err);
    process.exit(1);
  });
}
