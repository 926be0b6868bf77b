/**
 * The Redis Cluster broker on a real three-node cluster this file starts on free ports.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RedisClusterBroker, parseClusterUrl } from '../../src/brokers/redis-cluster';
import { createBroker } from '../../src/brokers/create';
import { silentLogger } from '../../src/logger';
import { brokerSuite } from '../helpers/broker-suite';
import type { OwnCluster } from '../helpers/redis-server';
import { redisCli, startOwnCluster } from '../helpers/redis-server';

let cluster: OwnCluster;
// One outer suite, so the cluster stops before the leak check that runs after the file.
describe('on a three-node Redis Cluster', () => {
  before(async () => {
    cluster = await startOwnCluster();
  });
  after(async () => {
    await cluster?.dispose();
  });

  brokerSuite('redis-cluster', async (history) => new RedisClusterBroker({ url: cluster.url, history, logger: silentLogger }));

  describe('Redis Cluster broker', () => {
    it('is chosen by a redis+cluster:// URL', async () => {
      const broker = createBroker(cluster.url, { history: { maxLength: 10, maxAgeMs: 1000 }, logger: silentLogger, channelPrefix: 'atr:' });
      assert.ok(broker instanceof RedisClusterBroker);
      assert.equal(broker.kind, 'redis-cluster');
      await broker.close();
    });

    it('uses sharded pub/sub: channels of scopes on every shard reach the subscriber once each', async () => {
      const broker = new RedisClusterBroker({ url: cluster.url, logger: silentLogger });
      const other = new RedisClusterBroker({ url: cluster.url, logger: silentLogger });
      await Promise.all([broker.connect(), other.connect()]);
      try {
        // Enough scopes that every one of the three shards owns some.
        const channels = Array.from({ length: 30 }, (_, i) => `atr-cl:{organization.${i}}`);
        const got = new Map<string, string[]>();
        for (const ch of channels) await broker.subscribe(ch, (m) => got.set(ch, [...(got.get(ch) ?? []), m]));
        const ids = new Map<string, string>();
        for (const ch of channels) ids.set(ch, await other.publish(ch, `{"ch":${JSON.stringify(ch)}}`));
        const deadline = Date.now() + 5000;
        while ([...got.values()].flat().length < channels.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 100));
        for (const ch of channels) {
          assert.deepEqual(got.get(ch), [`{"id":"${ids.get(ch)}","ch":${JSON.stringify(ch)}}`]);
        }
        // Each channel is subscribed once in the whole cluster, on the shard that owns it; all three shards are used.
        const shardsUsed = new Set<number>();
        for (const ch of channels) {
          let total = 0;
          for (const node of cluster.nodes) {
            const reply = (await redisCli(node.port, 'PUBSUB', 'SHARDNUMSUB', ch)).split('\n');
            const count = Number(reply[1]);
            total += count;
            if (count > 0) shardsUsed.add(node.port);
          }
          assert.equal(total, 1, `subscriptions of ${ch}`);
        }
        assert.equal(shardsUsed.size, 3);
      } finally {
        await other.close();
        await broker.close();
      }
    });

    it('parses credentials and nodes from the URL and refuses a node without a port', () => {
      assert.deepEqual(parseClusterUrl('redis+cluster://:secret@10.0.0.1:7000,10.0.0.2:7001'), {
        rootNodes: [{ url: 'redis://:secret@10.0.0.1:7000' }, { url: 'redis://:secret@10.0.0.2:7001' }],
        tls: false,
      });
      assert.throws(() => parseClusterUrl('redis+cluster://10.0.0.1'), {
        code: 'ATR_ERR_CONFIG_BROKER',
        message: 'Each node of a Redis Cluster URL needs host:port; got "10.0.0.1" in "redis+cluster://10.0.0.1"',
      });
    });

    it('goes not-ready when a master dies and delivers again on its shard once it is back', async () => {
      const broker = new RedisClusterBroker({ url: cluster.url, logger: silentLogger, pingInterval: 300, pingTimeout: 500, reconnectMinDelay: 100, reconnectMaxDelay: 300 });
      const events: string[] = [];
      broker.on('down', () => events.push('down'));
      broker.on('ready', () => events.push('ready'));
      await broker.connect();
      try {
        const victim = cluster.nodes[1]!;
        // A channel owned by the node that will die.
        let channel = '';
        for (let i = 0; !channel; i++) {
          const candidate = `atr-cl-out:{organization.${i}}`;
          const slot = Number(await redisCli(victim.port, 'CLUSTER', 'KEYSLOT', candidate));
          const owner = (await redisCli(victim.port, 'CLUSTER', 'NODES')).split('\n').find((l) => l.includes('myself'))!;
          const ranges = owner.split(' ').slice(8).map((r) => r.split('-').map(Number));
          if (ranges.some(([a, b = a]) => slot >= a! && slot <= b!)) channel = candidate;
        }
        const got: string[] = [];
        await broker.subscribe(channel, (m) => got.push(m));
        await victim.stop();
        const deadline = Date.now() + 5000;
        while (broker.ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.equal(broker.ready, false);
        await assert.rejects(broker.publish(channel, '{}'), { code: 'ATR_ERR_BROKER_CONNECTION' });
        await victim.start();
        const back = Date.now() + 15_000;
        while (!broker.ready && Date.now() < back) await new Promise((r) => setTimeout(r, 20));
        assert.equal(broker.ready, true);
        // The sharded subscription is restored on the node, once.
        const restored = Date.now() + 5000;
        while ((await redisCli(victim.port, 'PUBSUB', 'SHARDNUMSUB', channel)).split('\n')[1] !== '1' && Date.now() < restored) {
          await new Promise((r) => setTimeout(r, 50));
        }
        const id = await broker.publish(channel, '{"n":1}');
        const arrived = Date.now() + 3000;
        while (got.length < 1 && Date.now() < arrived) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(got, [`{"id":"${id}","n":1}`]);
        assert.deepEqual(events.slice(0, 3), ['ready', 'down', 'ready']);
        assert.equal(broker.reconnects, 1);
      } finally {
        await broker.close();
      }
    });
  });
});
