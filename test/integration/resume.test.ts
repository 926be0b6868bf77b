// Issue 7: nothing missed. Resume after a dropped connection, across server
// processes, atr.reset when the history was trimmed — on real Redis, with a
// publisher that keeps publishing throughout.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { createAtr } from '../../src/atr';
import { createMetrics } from '../../src/metrics';
import type { Atr } from '../../src/atr';
import { silentLogger } from '../../src/logger';
import { scopeKey } from '../../src/routing';
import { AtrClient } from '../../src/client/index';
import { requireRedis, REDIS_URL } from '../helpers/services';
import { startApp, eventually, sleep } from '../helpers/connections';
import type { TestApp } from '../helpers/connections';
import { startAtrServer } from '../helpers/atr-server-process';
import type { ServerProcess } from '../helpers/atr-server-process';

/** A TCP proxy whose connections the test can cut, and which can refuse new ones: a network that drops. */
async function flakyProxy(targetPort: number) {
  const sockets = new Set<net.Socket>();
  let up = true;
  const server = net.createServer((client) => {
    if (!up) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      up = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      up = true;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Publishes `{ n }` to a scope every `everyMs` until stopped; remembers what it published, in order. */
function keepPublishing(atr: Atr, scope: string, everyMs = 5) {
  const published: number[] = [];
  let n = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      const value = n++;
      await atr.publish({ scope, name: 'tick.happened', data: { n: value } });
      published.push(value);
      await sleep(everyMs);
    }
  })();
  return {
    published,
    async stop() {
      running = false;
      await done;
    },
  };
}

const received = (client: AtrClient) => {
  const values: number[] = [];
  client.on('tick.happened', (e: any) => values.push(e.data.n));
  return values;
};

function assertExactly(got: number[], published: number[]): void {
  const dupes = got.filter((v, i) => got.indexOf(v) !== i);
  assert.deepEqual(dupes, [], 'no event is delivered twice');
  assert.deepEqual(got, published, 'every published event arrives, in order');
}

describe('resume (issue 7) on Redis', () => {
  let publisher: Atr;
  before(async () => {
    await requireRedis();
    publisher = createAtr({ broker: REDIS_URL, logger: silentLogger, channelPrefix: 'atr-resume-test:' });
    await publisher.connect();
  });
  after(async () => {
    await publisher.close();
  });

  it('gives a client that was cut off exactly the events it missed, then live ones, while publishing goes on', async () => {
    const serverAtr = createAtr({ broker: REDIS_URL, logger: silentLogger, channelPrefix: 'atr-resume-test:' });
    const app: TestApp = await startApp(serverAtr);
    const proxy = await flakyProxy(app.port);
    const scope = scopeKey('organization', randomUUID());
    const path = `/ws/${scope.replace('.', '/')}`;
    const client = new AtrClient({ url: `ws://127.0.0.1:${proxy.port}${path}`, reconnect: { initialDelay: 20, maxDelay: 100, jitter: 0 }, pingInterval: 0 });
    const got = received(client);
    let readies = 0;
    client.on('atr.ready', () => readies++);
    await eventually(() => readies === 1, 5000, 'first atr.ready');

    const pub = keepPublishing(publisher, scope);
    await eventually(() => got.length >= 20, 5000, '20 live events');
    proxy.cut();
    const countAtCut = pub.published.length;
    await eventually(() => pub.published.length >= countAtCut + 50, 10_000, '50 events published while cut off');
    const lastSeenBeforeReconnect = got[got.length - 1]!;
    proxy.restore();
    await eventually(() => readies === 2, 5000, 'reconnected');
    await sleep(100);
    await pub.stop();
    await eventually(() => got.length === pub.published.length, 5000, `all ${pub.published.length} events (got ${got.length})`);
    assertExactly(got, pub.published);
    assert.ok(pub.published.length - 1 - lastSeenBeforeReconnect >= 50, 'at least 50 events were missed and replayed');
    assert.ok(app.router.hub.metrics.replayed >= 50);
    const metrics = createMetrics(serverAtr, app.router.hub);
    const replayed = Number(/^atr_replayed_total (\d+)$/m.exec(await metrics.render())?.[1]);
    metrics.close();
    assert.ok(replayed >= 50, `atr_replayed_total is ${replayed}`);

    await client.close();
    await proxy.close();
    await app.close();
    await serverAtr.close();
  });

  it('resumes just as well on another server process', async () => {
    const servers: ServerProcess[] = [];
    const env = { ATR_REDIS_URL: REDIS_URL };
    servers.push(await startAtrServer(['--redis', REDIS_URL, '--channel-prefix', 'atr-resume-test:'], env));
    servers.push(await startAtrServer(['--redis', REDIS_URL, '--channel-prefix', 'atr-resume-test:'], env));
    const scope = scopeKey('organization', randomUUID());
    const path = `/${scope.replace('.', '/')}`;
    let target = 0;
    const client = new AtrClient({ url: () => `ws://127.0.0.1:${servers[target]!.port}${path}`, reconnect: { initialDelay: 20, maxDelay: 100, jitter: 0 }, pingInterval: 0 });
    const got = received(client);
    let readies = 0;
    client.on('atr.ready', () => readies++);
    await eventually(() => readies === 1, 10_000, 'first atr.ready');
    const pub = keepPublishing(publisher, scope);
    await eventually(() => got.length >= 20, 5000, '20 live events');
    target = 1;
    const countAtStop = pub.published.length;
    await servers[0]!.stop('SIGKILL');
    await eventually(() => pub.published.length >= countAtStop + 50, 10_000, '50 more events published');
    await eventually(() => readies === 2, 10_000, 'reconnected to the other server');
    await sleep(100);
    await pub.stop();
    await eventually(() => got.length === pub.published.length, 5000, `all ${pub.published.length} events (got ${got.length})`);
    assertExactly(got, pub.published);

    await client.close();
    for (const s of servers) await s.stop();
  });

  it('never delivers a replayed event twice when its live copy arrives after the replay (history and live come on different connections)', async () => {
    const serverAtr = createAtr({ broker: REDIS_URL, logger: silentLogger, channelPrefix: 'atr-resume-test:' });
    const app = await startApp(serverAtr);
    let bad = 0;
    for (let round = 0; round < 12; round++) {
      const scope = scopeKey('organization', randomUUID());
      const ids: string[] = [];
      for (let n = 1; n <= 5; n++) ids.push(await publisher.publish({ scope, name: 'tick.happened', data: { n } }));
      const publishing = (async () => {
        for (let n = 6; n <= 40; n++) await publisher.publish({ scope, name: 'tick.happened', data: { n } });
      })();
      const client = new AtrClient({ url: `${app.base}/ws/${scope.replace('.', '/')}`, positions: { [scope]: ids[1]! }, pingInterval: 0 });
      const got = received(client);
      await publishing;
      await eventually(() => got.length >= 38, 5000, `38 events (got ${got.length})`);
      await sleep(50);
      await client.close();
      const want = Array.from({ length: 38 }, (_, i) => i + 3);
      if (JSON.stringify(got) !== JSON.stringify(want)) bad++;
    }
    assert.equal(bad, 0, 'every round got 3..40 once each, in order');
    await app.close();
    await serverAtr.close();
  });

  it('says atr.reset when the history no longer reaches back, and goes on live', async () => {
    const trimming = createAtr({ broker: REDIS_URL, logger: silentLogger, channelPrefix: 'atr-resume-test:', historyMaxLength: 10 });
    const serverAtr = createAtr({ broker: REDIS_URL, logger: silentLogger, channelPrefix: 'atr-resume-test:' });
    const app = await startApp(serverAtr);
    const scope = scopeKey('organization', randomUUID());
    const old = await trimming.publish({ scope, name: 'tick.happened', data: { n: -1 } });
    for (let n = 0; n < 30; n++) await trimming.publish({ scope, name: 'tick.happened', data: { n } });
    const client = new AtrClient({ url: `${app.base}/ws/${scope.replace('.', '/')}`, positions: { [scope]: old }, pingInterval: 0 });
    const resets: any[] = [];
    client.on('atr.reset', (m) => resets.push(m));
    const got = received(client);
    await eventually(() => resets.length === 1, 5000, 'atr.reset');
    assert.equal(resets[0].scope, scope);
    assert.equal(resets[0].position, await trimming.position(scope));
    assert.deepEqual(got, [], 'nothing of a history with a gap is replayed');
    await trimming.publish({ scope, name: 'tick.happened', data: { n: 100 } });
    await eventually(() => got.length === 1, 5000, 'the next live event');
    assert.deepEqual(got, [100]);

    await client.close();
    await app.close();
    await serverAtr.close();
    await trimming.close();
  });

  it('answers a malformed resume position with atr.error and still delivers live events', async () => {
    const serverAtr = createAtr({ broker: REDIS_URL, logger: silentLogger, channelPrefix: 'atr-resume-test:' });
    const app = await startApp(serverAtr);
    const scope = scopeKey('organization', randomUUID());
    const client = new AtrClient({ url: `${app.base}/ws/${scope.replace('.', '/')}`, positions: { [scope]: 'not-an-id' }, pingInterval: 0 });
    const errors: any[] = [];
    client.on('atr.error', (m) => errors.push(m));
    const got = received(client);
    await eventually(() => errors.length === 1, 5000, 'atr.error');
    assert.equal(errors[0].code, 'ATR_ERR_CLIENT_RESUME');
    await publisher.publish({ scope, name: 'tick.happened', data: { n: 1 } });
    await eventually(() => got.length === 1, 5000, 'a live event');
    await client.close();
    await app.close();
    await serverAtr.close();
  });
});
