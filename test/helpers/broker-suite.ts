/**
 * One suite of behaviour that every broker must show: memory, Redis and Redis
 * Cluster run the same tests.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Broker, HistoryOptions } from '../../src/brokers/broker';
import { compareEventIds } from '../../src/event';

export type MakeBroker = (history?: Partial<HistoryOptions>) => Promise<Broker>;

function collector() {
  const messages: string[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const listener = (message: string) => {
    messages.push(message);
    for (const w of [...waiters]) if (messages.length >= w.n) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
  };
  const until = (n: number, ms = 3000) => new Promise<void>((resolve, reject) => {
    if (messages.length >= n) return resolve();
    const timer = setTimeout(() => reject(new Error(`got ${messages.length} of ${n} messages`)), ms);
    waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(); } });
  });
  return { messages, listener, until };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function brokerSuite(name: string, makeBroker: MakeBroker): void {
  describe(`${name} broker (shared suite)`, () => {
    const open: Broker[] = [];
    const make = async (history?: Partial<HistoryOptions>) => {
      const broker = await makeBroker(history);
      open.push(broker);
      await broker.connect();
      return broker;
    };
    // Channels unique to this run, so that files sharing one Redis do not meet.
    const channel = (scope = `organization.${randomUUID().slice(0, 8)}`) => `atr-suite:{${scope}}`;

    afterEach(async () => {
      for (const broker of open.splice(0)) await broker.close();
    });

    it('delivers a published message with the id publish returned, the id first', async () => {
      const broker = await make();
      const ch = channel();
      const got = collector();
      await broker.subscribe(ch, got.listener);
      const id = await broker.publish(ch, '{"name":"post.created","data":{"a":1}}');
      await got.until(1);
      assert.equal(got.messages[0], `{"id":"${id}","name":"post.created","data":{"a":1}}`);
      assert.match(id, /^\d+-\d{6}$/);
    });

    it('gives ids that sort in publish order, as strings too', async () => {
      const broker = await make();
      const ch = channel();
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push(await broker.publish(ch, `{"n":${i}}`));
      const sorted = [...ids].sort(compareEventIds);
      assert.deepEqual(sorted, ids);
      assert.equal(new Set(ids).size, ids.length);
    });

    it('delivers messages of one channel in publish order and only to that channel', async () => {
      const broker = await make();
      const a = channel('organization.7');
      const b = channel('organization.70');
      const gotA = collector();
      const gotB = collector();
      await broker.subscribe(a, gotA.listener);
      await broker.subscribe(b, gotB.listener);
      await Promise.all([1, 2, 3, 4, 5].map((n) => broker.publish(a, `{"n":${n}}`)));
      await gotA.until(5);
      await sleep(50);
      assert.deepEqual(gotA.messages.map((m) => JSON.parse(m).n), [1, 2, 3, 4, 5]);
      assert.equal(gotB.messages.length, 0);
    });

    it('keeps a history: messages after an id, complete, and the position', async () => {
      const broker = await make();
      const ch = channel();
      const first = await broker.publish(ch, '{"n":1}');
      const second = await broker.publish(ch, '{"n":2}');
      const third = await broker.publish(ch, '{}');
      const page = await broker.history(ch, first);
      assert.deepEqual(page, { messages: [`{"id":"${second}","n":2}`, `{"id":"${third}"}`], complete: true, lastId: third });
      const limited = await broker.history(ch, '0-000000', 2);
      assert.equal(limited.messages.length, 2);
      assert.equal(limited.lastId, second);
      assert.equal(limited.complete, true);
      assert.equal(await broker.position(ch), third);
      const none = await broker.history(ch, third);
      assert.deepEqual(none, { messages: [], complete: true, lastId: third });
    });

    it('calls a never-written channel complete, empty, at position 0-000000', async () => {
      const broker = await make();
      const ch = channel();
      assert.equal(await broker.position(ch), '0-000000');
      assert.deepEqual(await broker.history(ch, '0-000000'), { messages: [], complete: true, lastId: '0-000000' });
    });

    it('trims the history by count and says incomplete to a client that is behind the trim', async () => {
      const broker = await make({ maxLength: 10 });
      const ch = channel();
      const first = await broker.publish(ch, '{"n":0}');
      let last = first;
      // Redis trims approximately (whole stream nodes of 100 entries), so publish well past that.
      for (let i = 1; i < 250; i++) last = await broker.publish(ch, `{"n":${i}}`);
      const behind = await broker.history(ch, first, 1000);
      assert.equal(behind.complete, false);
      assert.ok(behind.messages.length < 249, `kept ${behind.messages.length}`);
      assert.equal(behind.lastId, last);
      const current = await broker.history(ch, last);
      assert.equal(current.complete, true);
    });

    it('trims the history by age', async () => {
      const broker = await make({ maxAgeMs: 300 });
      const ch = channel();
      const old = await broker.publish(ch, '{"n":1}');
      await sleep(400);
      const page = await broker.history(ch, '0-000000');
      assert.deepEqual(page.messages, []);
      assert.equal(page.complete, false);
      const fresh = await broker.publish(ch, '{"n":2}');
      const after = await broker.history(ch, old);
      assert.deepEqual(after.messages, [`{"id":"${fresh}","n":2}`]);
      assert.equal(after.complete, true);
    });

    it('publishes many events in one call, in order, each with its own id, delivered and kept as one by one', async () => {
      const broker = await make();
      assert.equal(typeof broker.publishMany, 'function');
      const a = channel();
      const b = channel();
      const gotA = collector();
      const gotB = collector();
      await broker.subscribe(a, gotA.listener);
      await broker.subscribe(b, gotB.listener);
      const before = await broker.publish(a, '{"n":"before"}');
      const items = [0, 1, 2, 3, 4, 5].map((n) => ({ channel: n % 2 === 0 ? a : b, body: `{"n":${n}}` }));
      const ids = await broker.publishMany!(items);
      for (const id of ids) assert.equal(typeof id, 'string', String(id));
      const [idsA, idsB] = [ids.filter((_, i) => i % 2 === 0) as string[], ids.filter((_, i) => i % 2 === 1) as string[]];
      assert.ok(compareEventIds(before, idsA[0]!) < 0 && compareEventIds(idsA[0]!, idsA[1]!) < 0 && compareEventIds(idsA[1]!, idsA[2]!) < 0, idsA.join(' '));
      await gotA.until(4);
      await gotB.until(3);
      assert.deepEqual(gotA.messages.slice(1), idsA.map((id, k) => `{"id":"${id}","n":${2 * k}}`));
      assert.deepEqual(gotB.messages, idsB.map((id, k) => `{"id":"${id}","n":${2 * k + 1}}`));
      assert.deepEqual((await broker.history(a, before)).messages, gotA.messages.slice(1));
      assert.equal(await broker.position(b), idsB[2]);
    });

    it('trims by age past several pages of entries (and past the pages it walks) and marks the newest it removed', async () => {
      const broker = await make({ maxAgeMs: 300 });
      // 150 aged entries: found page by page; 300: more than the pages walked, found by XREVRANGE.
      const runs = await Promise.all([150, 300].map(async (count) => {
        const ch = channel();
        const old: string[] = [];
        for (let i = 0; i < count; i++) old.push(await broker.publish(ch, `{"n":${i}}`));
        return { ch, old };
      }));
      await sleep(400);
      for (const { ch, old } of runs) {
        const fresh = await broker.publish(ch, '{"n":"fresh"}');
        // A reader at the newest aged-out entry missed nothing; one before it did.
        assert.deepEqual(await broker.history(ch, old.at(-1)!), { messages: [`{"id":"${fresh}","n":"fresh"}`], complete: true, lastId: fresh });
        const behind = await broker.history(ch, old.at(-2)!);
        assert.equal(behind.complete, false, `${old.length} aged entries`);
        assert.deepEqual(behind.messages, [`{"id":"${fresh}","n":"fresh"}`]);
      }
    });

    it('stops delivering after unsubscribe and lists only live subscriptions', async () => {
      const broker = await make();
      const a = channel();
      const b = channel();
      const gotA = collector();
      await broker.subscribe(a, gotA.listener);
      await broker.subscribe(b, () => undefined);
      assert.deepEqual(broker.subscriptions().sort(), [a, b].sort());
      await broker.unsubscribe(a);
      assert.deepEqual(broker.subscriptions(), [b]);
      await broker.publish(a, '{"n":1}');
      await sleep(100);
      assert.equal(gotA.messages.length, 0);
    });

    it('works on the root scope channel', async () => {
      const broker = await make();
      const root = `atr-suite-${randomUUID().slice(0, 8)}:{}`;
      const got = collector();
      await broker.subscribe(root, got.listener);
      const id = await broker.publish(root, '{"name":"tick"}');
      await got.until(1);
      assert.equal(got.messages[0], `{"id":"${id}","name":"tick"}`);
      assert.equal(await broker.position(root), id);
    });

    it('closes leaving nothing subscribed and refuses work afterwards', async () => {
      const broker = await make();
      await broker.subscribe(channel(), () => undefined);
      await broker.close();
      assert.deepEqual(broker.subscriptions(), []);
      assert.equal(broker.ready, false);
      await assert.rejects(broker.publish(channel(), '{}'), { code: 'ATR_ERR_BROKER_CLOSED' });
      await broker.close(); // twice is fine
    });
  });
}
