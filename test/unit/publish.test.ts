import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createAtr, configure, publish, getAtr, resetDefaultAtr } from '../../src/atr';
import { registry, Registry } from '../../src/registry';
import { silentLogger } from '../../src/logger';
import { scopeKey } from '../../src/routing';
import type { Broker } from '../../src/brokers/broker';

describe('publish()', () => {
  it('publishes from anywhere with data in place of record', async () => {
    const atr = createAtr({ logger: silentLogger });
    const got: string[] = [];
    await atr.broker.subscribe(atr.channelOf('organization.7'), (m) => got.push(m));
    const id = await atr.publish({ scope: 'organization.7', name: 'invoice.paid', data: { id: 3 } });
    await new Promise((r) => setImmediate(r));
    assert.equal(got.length, 1);
    const msg = JSON.parse(got[0]!);
    assert.equal(msg.id, id);
    assert.equal(msg.name, 'invoice.paid');
    assert.equal(msg.routingKey, 'organization.7.invoice.paid');
    assert.deepEqual(msg.data, { id: 3 });
    assert.ok(!Number.isNaN(Date.parse(msg.occurredAt)));
    await atr.close();
  });

  it('rejects reserved names, bad names and raw scopes with a clear error', async () => {
    const atr = createAtr({ logger: silentLogger });
    await assert.rejects(atr.publish({ name: 'atr.ready' }), { code: 'ATR_ERR_EVENT_NAME' });
    await assert.rejects(atr.publish({ name: 'has space' }), { code: 'ATR_ERR_EVENT_NAME' });
    await assert.rejects(atr.publish({ scope: 'organization.7*', name: 'x.y' }), { code: 'ATR_ERR_EVENT_SCOPE' });
    await assert.doesNotReject(atr.publish({ scope: scopeKey('organization', '7*'), name: 'x.y' }));
    await atr.close();
  });

  it('uses the configured serializer and keeps the broker id', async () => {
    class Serializer {
      constructor(readonly event: { name: string }) {}
      toJSON() {
        return { id: 'mine', kind: this.event.name, big: 10n };
      }
    }
    const atr = createAtr({ logger: silentLogger, eventSerializer: Serializer });
    const got: string[] = [];
    await atr.broker.subscribe(atr.channelOf(''), (m) => got.push(m));
    const id = await atr.publish({ name: 'x.y' });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(JSON.parse(got[0]!), { id, kind: 'x.y', big: '10' });
    await atr.close();
  });

  it('loses only the event whose serializer throws, reports it, and publishes the next ones in order', async () => {
    class Flaky {
      constructor(readonly event: { data?: unknown; name: string }) {}
      async toJSON() {
        await new Promise((r) => setTimeout(r, Math.random() * 5));
        if ((this.event.data as { n: number }).n === 2) throw new Error('boom');
        return { n: (this.event.data as { n: number }).n };
      }
    }
    const errors: Error[] = [];
    const atr = createAtr({ logger: silentLogger, eventSerializer: Flaky, onError: (e) => errors.push(e) });
    const got: number[] = [];
    await atr.broker.subscribe(atr.channelOf(''), (m) => got.push(JSON.parse(m).n));
    const results = await Promise.allSettled([0, 1, 2, 3, 4].map((n) => atr.publish({ name: 'x.y', data: { n } })));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, [0, 1, 3, 4]);
    assert.equal(results[2]!.status, 'rejected');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /serializer threw for x\.y: boom/);
    await atr.close();
  });

  it('reports a broker failure and rejects without stalling later events', async () => {
    class DownBroker extends EventEmitter {
      kind = 'down';
      ready = false;
      calls = 0;
      async connect() {}
      async publish(): Promise<string> {
        this.calls++;
        if (this.calls === 1) throw new Error('connection refused');
        return '1-000000';
      }
      async subscribe() {}
      async unsubscribe() {}
      subscriptions() { return []; }
      async history() { return { messages: [], complete: true, lastId: '0-000000' }; }
      async position() { return '0-000000'; }
      async close() {}
    }
    const errors: unknown[] = [];
    const atr = createAtr({ logger: silentLogger, broker: new DownBroker() as unknown as Broker, onError: (e, ctx) => errors.push([e.message, ctx.where]) });
    await assert.rejects(atr.publish({ name: 'a.b' }), /connection refused/);
    assert.equal(await atr.publish({ name: 'a.b' }), '1-000000');
    assert.deepEqual(errors, [['connection refused', 'publish']]);
    await atr.close();
  });

  it('uses the instance set by configure() and says so when there is none', async () => {
    resetDefaultAtr();
    assert.throws(() => getAtr(), { code: 'ATR_ERR_NOT_CONFIGURED' });
    const atr = configure({ logger: silentLogger });
    assert.equal(getAtr(), atr);
    assert.match(await publish({ name: 'a.b' }), /^\d+-\d{6}$/);
    await atr.close();
    resetDefaultAtr();
  });
});

describe('registry', () => {
  it('lists the event names of registered models and extra names, also under a scope', () => {
    const r = new Registry();
    r.add({ resourceKey: 'post', actions: ['created', 'updated', 'destroyed'] });
    r.add({ resourceKey: 'user', actions: ['created'] });
    r.register('invoice.paid');
    assert.deepEqual(r.channels(), ['invoice.paid', 'post.created', 'post.destroyed', 'post.updated', 'user.created']);
    assert.deepEqual(r.scopedChannels('organization.7').slice(0, 2), ['organization.7.invoice.paid', 'organization.7.post.created']);
  });

  it('is exported as one process-wide instance', () => {
    assert.ok(registry instanceof Registry);
  });
});
