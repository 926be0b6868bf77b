/**
 * Issue 4: two atr-server processes and an app process share events through
 * a Redis this file starts on a free port; the Redis goes away and comes back.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { OwnRedis, redisCli, startOwnRedis } from '../helpers/redis-server';
import { AppProcess, TestClient, httpStatus, startAtrServer, waitUntil } from '../helpers/atr-server-process';
import type { ServerProcess } from '../helpers/atr-server-process';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('atr-server scale-out on Redis', () => {
  let redis: OwnRedis;
  let servers: ServerProcess[] = [];
  let app: AppProcess;
  let clients: TestClient[] = [];

  before(async () => {
    redis = await startOwnRedis();
    servers = await Promise.all([startAtrServer(['--redis', redis.url]), startAtrServer([], { ATR_REDIS_URL: redis.url })]);
    app = new AppProcess(redis.url);
    await app.ready;
  });

  after(async () => {
    for (const c of clients) c.close();
    await app?.stop();
    await Promise.all(servers.map((s) => s.stop()));
    await redis?.dispose();
  });

  const eventsNamed = (client: TestClient, name: string) => client.events().filter((e) => e.name === name);

  it('delivers each event once to every client of its scope on both servers, and to no other scope', async () => {
    const [one, two] = servers;
    clients = [
      new TestClient(`ws://127.0.0.1:${one!.port}/organization/7`),
      new TestClient(`ws://127.0.0.1:${one!.port}/organization/7`),
      new TestClient(`ws://127.0.0.1:${two!.port}/organization/7`),
      new TestClient(`ws://127.0.0.1:${two!.port}/organization/8`),
    ];
    await Promise.all(clients.map((c) => c.ready()));
    const id = await app.publish('organization.7', 'invoice.paid', { n: 1 });
    const seven = clients.slice(0, 3);
    await waitUntil(() => seven.every((c) => eventsNamed(c, 'invoice.paid').length >= 1), 'the event on every client of organization 7');
    await sleep(200);
    for (const c of seven) {
      assert.deepEqual(eventsNamed(c, 'invoice.paid').map((e) => [e.id, e.data]), [[id, { n: 1 }]]);
    }
    assert.equal(clients[3]!.events().length, 0);
    for (const s of servers) assert.equal(await httpStatus(s.port, '/readyz'), 200);
  });

  it('survives Redis going away: not ready meanwhile, clients kept, the next event delivered once', async () => {
    await redis.stop();
    await waitUntil(async () => (await Promise.all(servers.map((s) => httpStatus(s.port, '/readyz')))).every((s) => s === 503), '/readyz 503 on both servers');
    for (const s of servers) assert.equal(await httpStatus(s.port, '/healthz'), 200);
    // A client that arrives during the outage is subscribed when Redis is back.
    const late = new TestClient(`ws://127.0.0.1:${servers[1]!.port}/organization/9`);
    clients.push(late);
    await late.ready();
    await sleep(1500); // publishes nothing for a while: several reconnect attempts fail
    await redis.start();
    await waitUntil(async () => (await Promise.all(servers.map((s) => httpStatus(s.port, '/readyz')))).every((s) => s === 200), '/readyz 200 again', 15_000);

    const id = await app.publish('organization.7', 'invoice.sent', { n: 2 });
    const seven = clients.slice(0, 3);
    await waitUntil(() => seven.every((c) => eventsNamed(c, 'invoice.sent').length >= 1), 'the next event on every client');
    await sleep(300);
    for (const c of seven) {
      assert.equal(c.closeCode, undefined, 'the client stayed connected');
      assert.deepEqual(eventsNamed(c, 'invoice.sent').map((e) => e.id), [id]);
    }
    assert.equal(clients[3]!.events().length, 0);
    const lateId = await app.publish('organization.9', 'invoice.sent', { n: 3 });
    await waitUntil(() => late.events().length >= 1, 'the event of the client that came during the outage');
    await sleep(200);
    assert.deepEqual(late.events().map((e) => e.id), [lateId]);
    // Each server holds one subscription per channel after resubscribing: two in all.
    assert.equal(await redisCli(redis.port, 'PUBSUB', 'NUMSUB', 'atr:{organization.7}'), 'atr:{organization.7}\n2');
    assert.equal(await redisCli(redis.port, 'PUBSUB', 'NUMSUB', 'atr:{organization.8}'), 'atr:{organization.8}\n1');
    const metrics = await (await fetch(`http://127.0.0.1:${servers[0]!.port}/metrics`)).text();
    assert.match(metrics, /^atr_broker_reconnects_total 1$/m);
    assert.match(metrics, /^atr_subscriptions 1$/m);
    assert.match(metrics, /^atr_connections 2$/m);
    const second = await (await fetch(`http://127.0.0.1:${servers[1]!.port}/metrics`)).text();
    assert.match(second, /^atr_subscriptions 3$/m);
    // Its sockets: one on 7 (two events), one on 8 (none), the late one on 9 (one).
    assert.match(second, /^atr_events_received_total 3$/m);
    assert.match(second, /^atr_deliveries_total 3$/m);
  });
});
