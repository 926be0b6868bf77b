import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'redis';
import { createAtr } from '../../src/atr';
import type { Atr } from '../../src/atr';
import { silentLogger } from '../../src/logger';
import { requireRedis } from '../helpers/services';
import type { TestApp } from '../helpers/connections';
import { OrganizationScope, TokenAuthenticator, connect, eventually, express4, rawUpgrade, sleep, startApp } from '../helpers/connections';

const prefix = `atr-test-router-${process.pid}:`;

describe('atrRouter on Redis, two server processes', () => {
  let url: string;
  let redis: ReturnType<typeof createClient>;
  const atrs: Atr[] = [];
  const apps: TestApp[] = [];
  let publisher: Atr;
  let one: TestApp;
  let two: TestApp;

  const make = () => {
    const atr = createAtr({ broker: url, channelPrefix: prefix, authenticateWith: TokenAuthenticator, scopeWith: OrganizationScope, logger: silentLogger });
    atrs.push(atr);
    return atr;
  };
  /** Subscriber connections Redis counts on a channel (every server process holds one). */
  const subscribers = async (scope: string): Promise<number> => {
    const reply = await redis.sendCommand(['PUBSUB', 'NUMSUB', `${prefix}{${scope}}`]) as [string, number];
    return Number(reply[1]);
  };

  before(async () => {
    url = await requireRedis();
    redis = createClient({ url });
    redis.on('error', () => undefined);
    await redis.connect();
    publisher = make();
    one = await startApp(make());
    two = await startApp(make(), { express: express4 });
    apps.push(one, two);
  });

  after(async () => {
    for (const app of apps) await app.close();
    for (const atr of atrs) await atr.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(keys);
    redis.destroy();
  });

  it('C1: delivers an event published anywhere to the sockets of its scope on every server, and to no other scope', async () => {
    const a1 = await connect(`${one.base}/ws/organization/7?token=alice`);
    const a2 = await connect(`${two.base}/ws/organization/7?token=alice`);
    const c = await connect(`${one.base}/ws/organization/70?token=carol`);
    const d = await connect(`${two.base}/ws/organization/77?token=dave`);
    await publisher.publish({ scope: 'organization.7', name: 'post.created', data: { id: 1 } });
    await a1.waitFor((m) => m.name === 'post.created');
    await a2.waitFor((m) => m.name === 'post.created');
    await sleep(100);
    assert.equal(a1.events().length, 1);
    assert.equal(a2.events().length, 1);
    assert.deepEqual(c.events(), []);
    assert.deepEqual(d.events(), []);
    await Promise.all([a1, a2, c, d].map((x) => x.close()));
    await eventually(async () => (await subscribers('organization.7')) === 0, 3000, 'no Redis subscriber left');
  });

  it('C4: after 20 reconnects Redis holds one subscription per server with open sockets and the event arrives once', async () => {
    const other = await connect(`${two.base}/ws/organization/7?token=alice`);
    for (let i = 0; i < 20; i++) {
      const c = await connect(`${one.base}/ws/organization/7?token=alice`);
      if (i % 2 === 0) c.ws.terminate();
      else c.ws.close();
    }
    const last = await connect(`${one.base}/ws/organization/7?token=alice`);
    await eventually(() => one.router.hub.metrics.connections === 1, 3000, 'one connection');
    await sleep(100);
    assert.equal(await subscribers('organization.7'), 2);
    assert.deepEqual(one.router.hub.channelNames(), [`${prefix}{organization.7}`]);
    await publisher.publish({ scope: 'organization.7', name: 'post.created', data: { id: 2 } });
    await last.waitFor((m) => m.name === 'post.created');
    await other.waitFor((m) => m.name === 'post.created');
    await sleep(100);
    assert.equal(last.events().length, 1);
    assert.equal(other.events().length, 1);
    await last.close();
    await eventually(async () => (await subscribers('organization.7')) === 1, 3000, 'only the other server');
    await other.close();
    await eventually(async () => (await subscribers('organization.7')) === 0, 3000, 'no subscriber');
  });

  it('C3 and C11: refuses before the upgrade and subscribes nothing in Redis', async () => {
    assert.equal((await rawUpgrade(one.port, '/ws/organization/8?token=alice')).status, 403);
    assert.equal((await rawUpgrade(two.port, '/ws/organization/8')).status, 401);
    assert.equal(await subscribers('organization.8'), 0);
  });
});
