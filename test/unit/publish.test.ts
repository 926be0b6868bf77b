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

  describe('batches', () => {
    /** A broker that records what it is handed; publishMany refuses bodies with "refuse". */
    class RecordingBroker extends EventEmitter {
      kind = 'recording';
      ready = true;
      batches: string[][] = [];
      seq = 0;
      async connect() {}
      async publish(_channel: string, body: string): Promise<string> {
        this.batches.push([body]);
        return `1-${String(++this.seq).padStart(6, '0')}`;
      }
      async publishMany(items: Array<{ channel: string; body: string }>): Promise<Array<string | Error>> {
        this.batches.push(items.map((i) => i.body));
        return items.map((i) => (i.body.includes('refuse') ? new Error('refused by the broker') : `1-${String(++this.seq).padStart(6, '0')}`));
      }
      async subscribe() {}
      async unsubscribe() {}
      subscriptions() { return []; }
      async history() { return { messages: [], complete: true, lastId: '0-000000' }; }
      async position() { return '0-000000'; }
      async close() {}
    }
    const nOf = (body: string) => (JSON.parse(body) as { data: { n: number } }).data.n;

    it('hands the events of one turn to the broker in one call, in order, at most 64 at a time, and every 64 in a loop that never yields', async () => {
      const broker = new RecordingBroker();
      const atr = createAtr({ logger: silentLogger, broker: broker as unknown as Broker });
      const all: Promise<string>[] = [];
      // Awaiting only microtasks, as an insert loop on synchronous SQLite does: no turn ends.
      for (let n = 0; n < 130; n++) {
        all.push(atr.publish({ name: 'x.y', data: { n } }));
        await Promise.resolve();
      }
      for (let i = 0; i < 20; i++) await Promise.resolve();
      assert.deepEqual(broker.batches.map((b) => b.length), [64, 64], 'two full batches went out before the turn ended');
      const ids = await Promise.all(all);
      assert.deepEqual(broker.batches.map((b) => b.length), [64, 64, 2]);
      assert.deepEqual(broker.batches.flat().map(nOf), [...Array(130).keys()]);
      assert.deepEqual(ids, [...ids].sort(), 'ids resolve in hand-in order');
      await atr.close();
    });

    it('loses only the event the broker refused within a batch: it rejects, is reported and dropped; the rest resolve', async () => {
      const broker = new RecordingBroker();
      const errors: string[] = [];
      const atr = createAtr({ logger: silentLogger, broker: broker as unknown as Broker, onError: (e) => errors.push(e.message) });
      const dropped: string[] = [];
      atr.on('dropped', (event: { data: { tag: string } }) => dropped.push(event.data.tag));
      const results = await Promise.allSettled(['a', 'refuse', 'c'].map((tag) => atr.publish({ name: 'x.y', data: { tag } })));
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
      assert.equal(broker.batches.length, 1);
      assert.deepEqual(errors, ['refused by the broker']);
      assert.deepEqual(dropped, ['refuse']);
      await atr.close();
    });

    it('reports a published listener that throws and still resolves the event, with no unhandled rejection', async () => {
      const broker = new RecordingBroker();
      const errors: Array<[string, unknown]> = [];
      const atr = createAtr({ logger: silentLogger, broker: broker as unknown as Broker, onError: (e, ctx) => errors.push([e.message, ctx.where]) });
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        atr.on('published', () => {
          throw new Error('listener bug');
        });
        const ids = await Promise.all([atr.publish({ name: 'x.y' }), atr.publish({ name: 'x.z' })]);
        assert.equal(ids.length, 2);
        await new Promise((r) => setTimeout(r, 10));
        assert.deepEqual(errors, [['listener bug', 'published listener'], ['listener bug', 'published listener']]);
        assert.deepEqual(unhandled, []);
      } finally {
        process.off('unhandledRejection', onUnhandled);
        await atr.close();
      }
    });

    it('fails only its own event when a broker throws instead of rejecting, and reports a throwing queued listener', async () => {
      const broker = new RecordingBroker();
      // A plain function, not async: it throws synchronously for one scope.
      broker.publish = function (this: RecordingBroker, channel: string, body: string) {
        if (channel.includes('bad')) throw new Error('refused at once');
        return RecordingBroker.prototype.publish.call(this, channel, body);
      };
      (broker as unknown as { publishMany?: unknown }).publishMany = undefined;
      const errors: Array<[string, unknown]> = [];
      const atr = createAtr({ logger: silentLogger, broker: broker as unknown as Broker, onError: (e, ctx) => errors.push([e.message, ctx.where]) });
      atr.once('queued', () => {
        throw new Error('queued listener bug');
      });
      const results = await Promise.allSettled(['o.a', 'o.bad', 'o.c'].map((scope) => atr.publish({ scope, name: 'x.y' })));
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
      assert.deepEqual(errors, [['queued listener bug', 'queued listener'], ['refused at once', 'publish']]);
      assert.equal(atr.pending, 0);
      await atr.close();
    });

    it('gathers the events handed in while a batch waits for its answer into the next call, in order, and sends a full 64 at once', async () => {
      /** Answers only when told, as a Redis a round trip away does. */
      class HeldBroker extends RecordingBroker {
        held: Array<() => void> = [];
        override async publish(channel: string, body: string): Promise<string> {
          await new Promise<void>((r) => this.held.push(r));
          return super.publish(channel, body);
        }
        override async publishMany(items: Array<{ channel: string; body: string }>): Promise<Array<string | Error>> {
          await new Promise<void>((r) => this.held.push(r));
          return super.publishMany(items);
        }
      }
      const broker = new HeldBroker();
      const atr = createAtr({ logger: silentLogger, broker: broker as unknown as Broker });
      const turn = () => new Promise((r) => setImmediate(r));
      const all: Promise<string>[] = [atr.publish({ name: 'x.y', data: { n: 0 } })];
      await turn();
      assert.equal(broker.held.length, 1, 'the first event went out on its own');
      // One event a turn, as awaited inserts hand them in, while the first is unanswered.
      for (let n = 1; n <= 5; n++) {
        all.push(atr.publish({ name: 'x.y', data: { n } }));
        await turn();
      }
      assert.equal(broker.held.length, 1, 'nothing more was sent while the first call was out');
      broker.held.shift()!();
      await turn();
      assert.equal(broker.held.length, 1, 'the five that gathered went in one call');
      for (let n = 6; n < 6 + 64; n++) all.push(atr.publish({ name: 'x.y', data: { n } }));
      await turn();
      assert.equal(broker.held.length, 2, 'a full batch does not wait for the call before it');
      while (broker.held.length > 0) {
        broker.held.shift()!();
        await turn();
      }
      const ids = await Promise.all(all);
      assert.deepEqual(broker.batches.map((b) => b.length), [1, 5, 64]);
      assert.deepEqual(broker.batches.flat().map(nOf), [...Array(70).keys()]);
      assert.deepEqual(ids, [...ids].sort(), 'ids resolve in hand-in order');
      await atr.close();
    });

    it('resolves ids in hand-in order when a full batch sent behind a smaller one is answered first', async () => {
      // A single Redis answers both in one read; the publish path then takes more
      // turns than publishMany, and across connections the order is anyone's.
      class ReversingBroker extends RecordingBroker {
        held: Array<() => void> = [];
        override async publish(channel: string, body: string): Promise<string> {
          const id = await super.publish(channel, body);
          await new Promise<void>((r) => this.held.push(r));
          return id;
        }
        override async publishMany(items: Array<{ channel: string; body: string }>): Promise<Array<string | Error>> {
          const ids = await super.publishMany(items);
          await new Promise<void>((r) => this.held.push(r));
          return ids;
        }
      }
      const broker = new ReversingBroker();
      const atr = createAtr({ logger: silentLogger, broker: broker as unknown as Broker });
      const published: number[] = [];
      atr.on('published', (event: { data: { n: number } }) => published.push(event.data.n));
      const resolved: number[] = [];
      const all = [atr.publish({ name: 'x.y', data: { n: 0 } }).then(() => resolved.push(0))];
      await new Promise((r) => setImmediate(r));
      for (let n = 1; n <= 64; n++) all.push(atr.publish({ name: 'x.y', data: { n } }).then(() => resolved.push(n)));
      await new Promise((r) => setImmediate(r));
      assert.equal(broker.held.length, 2);
      broker.held.pop()!(); // the full batch's answer first
      await new Promise((r) => setImmediate(r));
      broker.held.pop()!();
      await Promise.all(all);
      assert.deepEqual(resolved, [...Array(65).keys()]);
      assert.deepEqual(published, [...Array(65).keys()]);
      await atr.close();
    });

    it('fails the events of a publishMany answer that is not an array of ids, and goes on with the next ones', async () => {
      const broker = new RecordingBroker();
      let answer: unknown = undefined;
      broker.publishMany = async function (this: RecordingBroker, items: Array<{ channel: string; body: string }>) {
        this.batches.push(items.map((i) => i.body));
        return answer as Array<string | Error>;
      };
      const errors: string[] = [];
      const atr = createAtr({ logger: silentLogger, broker: broker as unknown as Broker, onError: (e) => errors.push(e.message) });
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const first = await Promise.allSettled([1, 2].map((n) => atr.publish({ name: 'x.y', data: { n } })));
        assert.deepEqual(first.map((r) => r.status), ['rejected', 'rejected']);
        answer = ['1-000001'];
        const second = await Promise.allSettled([3, 4].map((n) => atr.publish({ name: 'x.y', data: { n } })));
        assert.deepEqual(second.map((r) => r.status), ['fulfilled', 'rejected'], 'a missing id is no id "undefined"');
        assert.equal(await atr.publish({ name: 'x.y', data: { n: 5 } }), '1-000001', 'the pipeline still runs');
        await new Promise((r) => setTimeout(r, 10));
        assert.equal(atr.pending, 0);
        assert.equal(errors.length, 3);
        assert.deepEqual(unhandled, []);
      } finally {
        process.off('unhandledRejection', onUnhandled);
        await atr.close();
      }
    });

    it('waits in close() for the broker to answer what it was sent', async () => {
      class SlowBroker extends RecordingBroker {
        override async publishMany(items: Array<{ channel: string; body: string }>): Promise<Array<string | Error>> {
          await new Promise((r) => setTimeout(r, 150));
          return super.publishMany(items);
        }
      }
      const atr = createAtr({ logger: silentLogger, broker: new SlowBroker() as unknown as Broker });
      let settled = 0;
      for (let n = 0; n < 100; n++) void atr.publish({ name: 'x.y', data: { n } }).then(() => settled++);
      await atr.close();
      await Promise.resolve();
      assert.equal(settled, 100);
    });

    it('closes once when close() is called twice at the same time: one broker close, each closer once', async () => {
      const broker = new RecordingBroker();
      let brokerCloses = 0;
      broker.close = async () => {
        brokerCloses++;
      };
      const atr = createAtr({ logger: silentLogger, broker: broker as unknown as Broker });
      let closerRuns = 0;
      atr.onClose(async () => {
        closerRuns++;
      });
      void atr.publish({ name: 'x.y', data: { n: 1 } });
      await Promise.all([atr.close(), atr.close()]);
      await atr.close();
      assert.equal(brokerCloses, 1);
      assert.equal(closerRuns, 1);
      assert.deepEqual(broker.batches.flat().map(nOf), [1]);
    });

    it('reports a model event handed in after close() as dropped (ATR_ERR_BROKER_CLOSED), without a rejection', async () => {
      const errors: Array<[string | undefined, unknown]> = [];
      const atr = createAtr({ logger: silentLogger, broker: new RecordingBroker() as unknown as Broker, onError: (e, ctx) => errors.push([(e as { code?: string }).code, ctx.where]) });
      await atr.close();
      atr.enqueueEvent({ name: 'post.created', scope: '', routingKey: 'post.created', occurredAt: new Date().toISOString(), data: null });
      assert.deepEqual(errors, [['ATR_ERR_BROKER_CLOSED', 'publish']]);
      assert.equal(atr.pending, 0);
    });

    it('sends what was handed in before close() resolves', async () => {
      const broker = new RecordingBroker();
      const atr = createAtr({ logger: silentLogger, broker: broker as unknown as Broker });
      const handed = [1, 2, 3].map((n) => atr.publish({ name: 'x.y', data: { n } }));
      await atr.close();
      assert.deepEqual(broker.batches.flat().map(nOf), [1, 2, 3]);
      assert.equal((await Promise.all(handed)).length, 3);
      await assert.rejects(atr.publish({ name: 'x.y' }), { code: 'ATR_ERR_BROKER_CLOSED' });
    });
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
