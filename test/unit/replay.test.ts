import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBroker } from '../../src/brokers/memory';
import { ReplayGate, messageId } from '../../src/server/replay';

const n = (m: string) => JSON.parse(m).n as number;

describe('replay gate', () => {
  it('reads the id at the front of a broker message', () => {
    assert.equal(messageId('{"id":"1-000002","name":"x"}'), '1-000002');
    assert.equal(messageId('{"name":"x"}'), undefined);
  });

  it('sends the missed events, then the live ones that arrived meanwhile, once each and in order', async () => {
    const broker = new MemoryBroker();
    const sent: number[] = [];
    const gate = new ReplayGate((m) => sent.push(n(m)), () => assert.fail('no overflow'), 1e6);
    await broker.subscribe('c', (m) => gate.deliver(m));
    const first = await broker.publish('c', '{"n":0}');
    for (let i = 1; i <= 5; i++) await broker.publish('c', `{"n":${i}}`);
    await new Promise((r) => setImmediate(r));
    // Events 1..5 were delivered live while the gate was closed (held), and are also in the history.
    const publishing = (async () => {
      for (let i = 6; i <= 9; i++) await broker.publish('c', `{"n":${i}}`);
    })();
    const outcome = await gate.replay(broker, 'c', first);
    await publishing;
    await new Promise((r) => setImmediate(r));
    assert.equal(outcome.kind, 'replayed');
    assert.deepEqual(sent, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await broker.close();
  });

  it('pages through a long history', async () => {
    const broker = new MemoryBroker();
    const start = await broker.publish('c', '{"n":-1}');
    for (let i = 0; i < 23; i++) await broker.publish('c', `{"n":${i}}`);
    const sent: number[] = [];
    const gate = new ReplayGate((m) => sent.push(n(m)), () => {}, 1e6);
    const outcome = await gate.replay(broker, 'c', start, 5);
    assert.deepEqual(outcome, { kind: 'replayed', count: 23, lastId: await broker.position('c') });
    assert.deepEqual(sent, Array.from({ length: 23 }, (_, i) => i));
    await broker.close();
  });

  it('says reset when the history no longer reaches back, and goes live', async () => {
    const broker = new MemoryBroker({ history: { maxLength: 2 } });
    const old = await broker.publish('c', '{"n":0}');
    for (let i = 1; i <= 4; i++) await broker.publish('c', `{"n":${i}}`);
    const sent: number[] = [];
    const gate = new ReplayGate((m) => sent.push(n(m)), () => {}, 1e6);
    const outcome = await gate.replay(broker, 'c', old);
    assert.deepEqual(outcome, { kind: 'reset', position: await broker.position('c') });
    assert.deepEqual(sent, []);
    gate.deliver('{"id":"9999999999999-000000","n":5}');
    assert.deepEqual(sent, [5]);
    await broker.close();
  });

  it('gives up holding when the held messages outgrow the bound', () => {
    let overflowed = 0;
    const gate = new ReplayGate(() => {}, () => overflowed++, 10);
    gate.deliver('{"id":"1-000000","n":1}');
    assert.equal(overflowed, 1);
    assert.equal(gate.replaying, false);
  });
});

describe('replay gate after the replay', () => {
  it('drops live copies of replayed events that arrive late, until a newer one passed', async () => {
    const broker = new MemoryBroker();
    const start = await broker.publish('c', '{"n":0}');
    const late: string[] = [];
    for (let i = 1; i <= 3; i++) await broker.publish('c', `{"n":${i}}`);
    // The live copies of 1..3 have not arrived when the history is read (another connection).
    await broker.subscribe('c', (m) => late.push(m));
    await new Promise((r) => setImmediate(r));
    const sent: number[] = [];
    const gate = new ReplayGate((m) => sent.push(n(m)), () => {}, 1e6);
    await gate.replay(broker, 'c', start);
    assert.equal(gate.done, false);
    for (const m of late) gate.deliver(m);
    assert.deepEqual(sent, [1, 2, 3]);
    await broker.publish('c', '{"n":4}');
    await new Promise((r) => setImmediate(r));
    gate.deliver(late[late.length - 1]!);
    assert.deepEqual(sent, [1, 2, 3, 4]);
    assert.equal(gate.done, true);
    await broker.close();
  });
});
