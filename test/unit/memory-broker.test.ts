import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBroker } from '../../src/brokers/memory';
import { compareEventIds } from '../../src/event';

describe('memory broker', () => {
  it('delivers published messages, with the id first, in publish order', async () => {
    const broker = new MemoryBroker();
    const got: string[] = [];
    await broker.subscribe('c', (m) => got.push(m));
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await broker.publish('c', `{"n":${i}}`));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got.map((m) => JSON.parse(m).n), [0, 1, 2, 3, 4]);
    assert.deepEqual(got.map((m) => JSON.parse(m).id), ids);
    assert.deepEqual([...ids].sort(), ids);
    await broker.close();
  });

  it('does not deliver after unsubscribe, nor other channels', async () => {
    const broker = new MemoryBroker();
    const got: string[] = [];
    await broker.subscribe('a', (m) => got.push(m));
    await broker.publish('b', '{"x":1}');
    await broker.unsubscribe('a');
    await broker.publish('a', '{"x":2}');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, []);
    assert.deepEqual(broker.subscriptions(), []);
    await broker.close();
  });

  it('replays the history after an id and reports when it no longer reaches back', async () => {
    const broker = new MemoryBroker({ history: { maxLength: 3 } });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await broker.publish('c', `{"n":${i}}`));
    const recent = await broker.history('c', ids[2]!);
    assert.equal(recent.complete, true);
    assert.deepEqual(recent.messages.map((m) => JSON.parse(m).n), [3, 4]);
    assert.equal(recent.lastId, ids[4]);
    const old = await broker.history('c', ids[0]!);
    assert.equal(old.complete, false);
    assert.equal(await broker.position('c'), ids[4]);
    assert.equal((await broker.history('never', ids[0]!)).complete, true);
    assert.equal(await broker.position('never'), '0-000000');
    await broker.close();
  });

  it('keeps ids increasing when the clock does not move', async () => {
    const broker = new MemoryBroker();
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => broker.publish('c', `{"n":${i}}`)));
    for (let i = 1; i < ids.length; i++) assert.ok(compareEventIds(ids[i - 1]!, ids[i]!) < 0);
    await broker.close();
  });

  it('refuses to publish once closed', async () => {
    const broker = new MemoryBroker();
    await broker.close();
    await assert.rejects(broker.publish('c', '{}'), { code: 'ATR_ERR_BROKER_CLOSED' });
  });
});

describe('memory broker history across restarts', () => {
  it('cannot vouch for an id from before it existed (another process, or before a restart)', async () => {
    const before = new MemoryBroker();
    const oldId = await before.publish('c', '{"n":0}');
    await before.close();
    await new Promise((r) => setTimeout(r, 5));
    const after = new MemoryBroker();
    assert.equal((await after.history('c', oldId)).complete, false);
    await after.publish('c', '{"n":1}');
    assert.equal((await after.history('c', oldId)).complete, false);
    assert.equal((await after.history('c', '0-000000')).complete, true);
    assert.equal((await after.history('c', await after.position('c'))).complete, true);
    await after.close();
  });
});

describe('memory broker sweep', () => {
  it('trims scopes nobody publishes to any more, and still knows that a resume from before is incomplete', async () => {
    const broker = new MemoryBroker({ history: { maxAgeMs: 1000 } });
    const first = await broker.publish('quiet', '{"n":0}');
    await broker.publish('quiet', '{"n":1}');
    assert.equal(broker.historySize, 2);
    broker.sweep(Date.now() + 5000);
    assert.equal(broker.historySize, 0);
    assert.equal((await broker.history('quiet', first)).complete, false);
    await broker.close();
  });
});
