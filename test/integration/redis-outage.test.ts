/**
 * The Redis broker through outages of a Redis this file starts itself.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createClient } from 'redis';
import { RedisBroker } from '../../src/brokers/redis';
import type { Logger } from '../../src/logger';
import { compareEventIds } from '../../src/event';
import { OwnRedis, freePort, redisCli, startOwnRedis } from '../helpers/redis-server';

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting until ${what}`);
}

async function numSub(url: string, channel: string): Promise<number> {
  const raw = createClient({ url });
  await raw.connect();
  try {
    return (await raw.pubSubNumSub(channel))[channel] ?? 0;
  } finally {
    await raw.close();
  }
}

describe('Redis broker through outages', () => {
  let redis: OwnRedis;
  before(async () => {
    redis = await startOwnRedis();
  });
  after(async () => {
    await redis.dispose();
  });

  it('goes down, keeps retrying, and after two failed attempts in a row resubscribes each channel once', async () => {
    const broker = new RedisBroker({ url: redis.url, logger: quiet, reconnectMinDelay: 100, reconnectMaxDelay: 300 });
    const events: string[] = [];
    broker.on('down', () => events.push('down'));
    broker.on('ready', () => events.push('ready'));
    await broker.connect();
    const a = 'atr:{organization.1}';
    const b = 'atr:{organization.2}';
    const gone = 'atr:{organization.3}';
    const got: string[] = [];
    await broker.subscribe(a, (m) => got.push(`a ${m}`));
    await broker.subscribe(gone, () => got.push('gone'));

    await redis.stop();
    await until(() => !broker.ready, 'the broker is down');
    // While down: a new subscription is remembered, an old one dropped, publish fails at once.
    await broker.subscribe(b, (m) => got.push(`b ${m}`));
    await broker.unsubscribe(gone);
    const started = Date.now();
    await assert.rejects(broker.publish(a, '{}'), { code: 'ATR_ERR_BROKER_CONNECTION' });
    assert.ok(Date.now() - started < 100);
    const failedBefore = broker.failedAttempts;
    await until(() => broker.failedAttempts >= failedBefore + 2, 'two failed reconnect attempts');

    await redis.start();
    await until(() => broker.ready, 'the broker is ready again');
    assert.deepEqual(events, ['ready', 'down', 'ready']);
    assert.equal(broker.reconnects, 1);
    assert.equal(await numSub(redis.url, a), 1);
    assert.equal(await numSub(redis.url, b), 1);
    assert.equal(await numSub(redis.url, gone), 0);

    const idA = await broker.publish(a, '{"n":1}');
    const idB = await broker.publish(b, '{"n":2}');
    await broker.publish(gone, '{"n":3}');
    await until(() => got.length >= 2, 'both messages');
    await sleep(100);
    assert.deepEqual(got, [`a {"id":"${idA}","n":1}`, `b {"id":"${idB}","n":2}`]);
    await broker.close();
  });

  it('connects later when Redis is down at start, and reports the first failure', async () => {
    const port = await freePort();
    const late = new OwnRedis(port);
    const broker = new RedisBroker({ url: late.url, logger: quiet, reconnectMinDelay: 50, reconnectMaxDelay: 200 });
    try {
      await assert.rejects(broker.connect(), { code: 'ATR_ERR_BROKER_CONNECTION' });
      const got: string[] = [];
      await broker.subscribe('atr:{organization.9}', (m) => got.push(m));
      await late.start();
      await until(() => broker.ready, 'ready once Redis is up');
      await broker.connect();
      const id = await broker.publish('atr:{organization.9}', '{}');
      await until(() => got.length === 1, 'the message');
      assert.deepEqual(got, [`{"id":"${id}"}`]);
    } finally {
      await broker.close();
      await late.dispose();
    }
  });

  it('replaces a subscriber connection that silently died (no answer to PING)', async () => {
    // A proxy between the broker and Redis that can stop forwarding without closing anything.
    const sockets = new Set<net.Socket>();
    const frozen = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      const upstream = net.connect(redis.port, '127.0.0.1');
      sockets.add(client).add(upstream);
      client.on('data', (d) => { if (!frozen.has(client)) upstream.write(d); });
      upstream.on('data', (d) => { if (!frozen.has(client)) client.write(d); });
      const done = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
      client.on('error', done).on('close', done);
      upstream.on('error', done).on('close', done);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const { port } = proxy.address() as net.AddressInfo;
    const broker = new RedisBroker({ url: `redis://127.0.0.1:${port}`, logger: process.env.DEBUG_ATR ? { error: console.error, warn: console.error, info: console.error, debug: console.error } : quiet, pingInterval: 200, pingTimeout: 300, reconnectMinDelay: 50 });
    try {
      await broker.connect();
      const got: string[] = [];
      const channel = 'atr:{organization.dead}';
      await broker.subscribe(channel, (m) => got.push(m));
      // Freeze every connection open now: they stay open, answer nothing.
      for (const s of sockets) frozen.add(s);
      await until(() => !broker.ready, 'the dead connections are noticed', 3000);
      await until(() => broker.ready, 'new connections are ready', 5000);
      // Each connection has its own watchdog: publish until the subscriber's replacement delivers.
      const sent: string[] = [];
      await until(async () => {
        sent.push(await broker.publish(channel, '{"n":1}'));
        await sleep(100);
        return got.length > 0;
      }, 'a message on the new subscriber connection', 5000);
      const ids = got.map((m) => JSON.parse(m).id as string);
      assert.equal(new Set(ids).size, ids.length, 'no duplicates');
      assert.ok(ids.every((id) => sent.includes(id)));
      assert.equal(await numSub(redis.url, channel), 1, "the dead connection no longer holds a subscription");
    } finally {
      await broker.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('keeps a healthy idle subscriber: its PINGs are answered in subscribed mode', async () => {
    const broker = new RedisBroker({ url: redis.url, logger: quiet, pingInterval: 100, pingTimeout: 300 });
    const downs: unknown[] = [];
    broker.on('down', (e) => downs.push(e));
    await broker.connect();
    try {
      await broker.subscribe('atr:{organization.idle}', () => undefined);
      const pings = async () => Number(/cmdstat_ping:calls=(\d+)/.exec(await redisCli(redis.port, 'INFO', 'commandstats'))?.[1] ?? 0);
      const before = await pings();
      await sleep(1200);
      assert.ok((await pings()) - before >= 10, 'both connections were PINGed about every 100 ms');
      assert.deepEqual(downs, []);
      assert.equal(broker.ready, true);
      assert.equal(await numSub(redis.url, 'atr:{organization.idle}'), 1);
    } finally {
      await broker.close();
    }
  });

  it('connects with the password and database of the URL', async () => {
    const secured = new OwnRedis(await freePort(), ['--requirepass', 's3cret']);
    await secured.start();
    const broker = new RedisBroker({ url: `redis://:s3cret@127.0.0.1:${secured.port}/2`, logger: quiet });
    try {
      await broker.connect();
      const got: string[] = [];
      await broker.subscribe('atr:{organization.db}', (m) => got.push(m));
      const id = await broker.publish('atr:{organization.db}', '{}');
      await until(() => got.length === 1, 'the message');
      assert.deepEqual(got, [`{"id":"${id}"}`]);
      assert.equal(await redisCli(secured.port, '-a', 's3cret', '--no-auth-warning', '-n', '2', 'EXISTS', 'atr:{organization.db}:history'), '1');
      assert.equal(await redisCli(secured.port, '-a', 's3cret', '--no-auth-warning', '-n', '0', 'EXISTS', 'atr:{organization.db}:history'), '0');
      const wrong = new RedisBroker({ url: `redis://:nope@127.0.0.1:${secured.port}`, logger: quiet });
      await assert.rejects(wrong.connect(), (err: Error) => /WRONGPASS|invalid password/i.test(err.message));
      await wrong.close();
    } finally {
      await broker.close();
      await secured.dispose();
    }
  });

  it('keeps publish order when the server lost its scripts (SCRIPT FLUSH) under pipelined publishes', async () => {
    const broker = new RedisBroker({ url: redis.url, logger: quiet });
    await broker.connect();
    try {
      const channel = 'atr:{organization.flush}';
      const got: number[] = [];
      await broker.subscribe(channel, (m) => got.push(JSON.parse(m).n as number));
      await redisCli(redis.port, 'SCRIPT', 'FLUSH');
      // Publish over several turns of the event loop, so that replies (NOSCRIPT) arrive while more are issued.
      const pending: Promise<string>[] = [];
      for (let n = 0; n < 300; n++) {
        pending.push(broker.publish(channel, `{"n":${n}}`));
        if (n % 5 === 4) await new Promise((r) => setImmediate(r));
      }
      const ids = await Promise.all(pending);
      await until(() => got.length === 300, 'every message');
      assert.deepEqual(got, Array.from({ length: 300 }, (_, n) => n));
      assert.deepEqual([...ids].sort(compareEventIds), ids);
    } finally {
      await broker.close();
    }
  });
});
