import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'redis';
import { RedisBroker } from '../../src/brokers/redis';
import { brokerSuite } from '../helpers/broker-suite';
import { createAtr } from '../../src/atr';
import { createBroker } from '../../src/brokers/create';
import { createRedisBroker } from '../../src/brokers/factories';
import { REDIS_URL, requireRedis } from '../helpers/services';

before(async () => {
  await requireRedis();
});

after(async () => {
  // The streams and markers this file wrote on the shared Redis.
  const raw = createClient({ url: REDIS_URL });
  await raw.connect();
  for (const pattern of ['atr-suite*', 'atr-redis-test:*']) {
    for await (const keys of raw.scanIterator({ MATCH: pattern, COUNT: 1000 })) if (keys.length > 0) await raw.del(keys);
  }
  await raw.close();
});

brokerSuite('redis', async (history) => new RedisBroker({ url: REDIS_URL, history }));

describe('Redis broker', () => {
  it('drops a malformed message from Redis with a warning and goes on delivering', async () => {
    const warnings: string[] = [];
    const logger = { error() {}, info() {}, debug() {}, warn: (_o: object, msg?: string) => { warnings.push(msg ?? ''); } };
    const broker = new RedisBroker({ url: REDIS_URL, logger });
    const raw = createClient({ url: REDIS_URL });
    await Promise.all([broker.connect(), raw.connect()]);
    try {
      const channel = `atr-redis-test:{organization.${Date.now()}}`;
      const got: string[] = [];
      await broker.subscribe(channel, (m) => got.push(m));
      await raw.publish(channel, 'not json');
      await raw.publish(channel, '{"id":"1-000000"');
      const id = await broker.publish(channel, '{"n":1}');
      const deadline = Date.now() + 2000;
      while (got.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(got, [`{"id":"${id}","n":1}`]);
      assert.equal(warnings.filter((w) => w.includes('malformed')).length, 2);
    } finally {
      await raw.close();
      await broker.close();
    }
  });

  it('publishes a batch in one script call and loses only the event Redis refused, publishing those around it', async () => {
    const broker = new RedisBroker({ url: REDIS_URL });
    const raw = createClient({ url: REDIS_URL });
    await Promise.all([broker.connect(), raw.connect()]);
    try {
      const good = `atr-redis-test:{organization.batch${Date.now()}}`;
      const broken = `atr-redis-test:{organization.broken${Date.now()}}`;
      // The history key of `broken` holds a string: XADD answers WRONGTYPE.
      await raw.set(`${broken}:history`, 'not a stream');
      const got: string[] = [];
      await broker.subscribe(good, (m) => got.push(m));
      await raw.sendCommand(['CONFIG', 'RESETSTAT']);
      const ids = await broker.publishMany([
        { channel: good, body: '{"n":1}' },
        { channel: broken, body: '{"n":2}' },
        { channel: good, body: '{"n":3}' },
      ]);
      const stats = String(await raw.sendCommand(['INFO', 'commandstats']));
      assert.match(stats, /cmdstat_evalsha:calls=1,/, 'one script call for the batch');
      assert.equal(typeof ids[0], 'string');
      assert.ok(ids[1] instanceof Error);
      assert.equal((ids[1] as Error & { code?: string }).code, 'ATR_ERR_BROKER_PUBLISH');
      assert.match((ids[1] as Error).message, /WRONGTYPE/);
      assert.equal(typeof ids[2], 'string');
      const deadline = Date.now() + 2000;
      while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(got, [`{"id":"${ids[0]}","n":1}`, `{"id":"${ids[2]}","n":3}`]);
    } finally {
      await raw.close();
      await broker.close();
    }
  });

  it('keeps one Redis subscription per channel however often it is subscribed', async () => {
    const broker = new RedisBroker({ url: REDIS_URL });
    const raw = createClient({ url: REDIS_URL });
    await Promise.all([broker.connect(), raw.connect()]);
    try {
      const channel = `atr-redis-test:{organization.once${Date.now()}}`;
      await Promise.all([broker.subscribe(channel, () => undefined), broker.subscribe(channel, () => undefined)]);
      await broker.subscribe(channel, () => undefined);
      const counts = await raw.pubSubNumSub(channel);
      assert.equal(counts[channel], 1);
    } finally {
      await raw.close();
      await broker.close();
    }
  });

  it('rejects connect() promptly when nothing listens, and publish() too while it retries', async () => {
    const errors: Error[] = [];
    const broker = new RedisBroker({ url: 'redis://127.0.0.1:1', logger: { error() {}, warn() {}, info() {}, debug() {} } });
    broker.on('error', (e: Error) => errors.push(e));
    const started = Date.now();
    await assert.rejects(broker.connect(), { code: 'ATR_ERR_BROKER_CONNECTION' });
    await assert.rejects(broker.publish('atr:{x.1}', '{}'), { code: 'ATR_ERR_BROKER_CONNECTION' });
    await assert.rejects(broker.connect(), { code: 'ATR_ERR_BROKER_CONNECTION' });
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    assert.equal(broker.ready, false);
    await broker.close();
  });

  it('refuses a URL that is not redis:// with a clear error', () => {
    assert.throws(() => new RedisBroker({ url: 'http://x' }), {
      code: 'ATR_ERR_CONFIG_BROKER',
      message: 'The Redis broker needs a redis:// or rediss:// URL; got "http://x"',
    });
  });

  it('M7: an Atr on a Redis where nothing listens rejects each publish promptly and reports it', async () => {
    const reported: string[] = [];
    const atr = createAtr({
      broker: 'redis://127.0.0.1:1',
      logger: { error() {}, warn() {}, info() {}, debug() {} },
      onError: (err) => reported.push((err as { code?: string }).code ?? err.message),
    });
    const started = Date.now();
    const results = await Promise.allSettled([
      atr.publish({ scope: 'organization.7', name: 'post.created', data: { id: 1 } }),
      atr.publish({ scope: 'organization.7', name: 'post.created', data: { id: 2 } }),
    ]);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    assert.deepEqual(reported, ['ATR_ERR_BROKER_CONNECTION', 'ATR_ERR_BROKER_CONNECTION']);
    await atr.close();
  });

  it('is chosen by a redis:// URL with password and database, and by createRedisBroker()', async () => {
    const broker = createBroker('redis://:secret@127.0.0.1:6399/3', { history: { maxLength: 5, maxAgeMs: 1000 }, logger: { error() {}, warn() {}, info() {}, debug() {} }, channelPrefix: 'atr:' });
    assert.ok(broker instanceof RedisBroker);
    await broker.close();
    const custom = createRedisBroker({ url: REDIS_URL, pingInterval: 1000 });
    assert.equal(custom.kind, 'redis');
    await custom.close();
  });
});
