import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import type { WebSocket } from 'ws';
import { createAtr } from '../../src/atr';
import type { AtrOptions } from '../../src/config';
import type { MessageListener } from '../../src/brokers/broker';
import { MemoryBroker } from '../../src/brokers/memory';
import { silentLogger } from '../../src/logger';
import { getHub } from '../../src/server/hub';

/** Enough of a ws WebSocket for the hub and the reactor. */
class FakeSocket extends EventEmitter {
  readyState = 1;
  bufferedAmount = 0;
  sent: string[] = [];
  closeCode: number | undefined;
  pings = 0;
  answersPings = true;

  send(text: string): void {
    this.sent.push(text);
  }

  close(code: number): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.closeCode = code;
    setImmediate(() => this.finish(code));
  }

  terminate(): void {
    if (this.readyState === 3) return;
    this.readyState = 2;
    this.closeCode ??= 1006;
    setImmediate(() => this.finish(1006));
  }

  ping(): void {
    this.pings++;
    if (this.answersPings) setImmediate(() => this.emit('pong'));
  }

  events(): string[] {
    return this.sent.filter((m) => !m.startsWith('{"name":"atr.'));
  }

  private finish(code: number): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.emit('close', code, Buffer.alloc(0));
  }
}

/** A memory broker whose calls take a while, and that checks the hub never overlaps calls on a channel. */
class CheckingBroker extends MemoryBroker {
  violations: string[] = [];
  private inFlight = new Set<string>();

  constructor(private readonly delays: () => number) {
    super();
  }

  override async subscribe(channel: string, listener: MessageListener): Promise<void> {
    this.enter(channel, 'subscribe');
    if (this.subscriptions().includes(channel)) this.violations.push(`subscribed twice: ${channel}`);
    await new Promise((resolve) => setTimeout(resolve, this.delays()));
    await super.subscribe(channel, listener);
    this.inFlight.delete(channel);
  }

  override async unsubscribe(channel: string): Promise<void> {
    this.enter(channel, 'unsubscribe');
    await new Promise((resolve) => setTimeout(resolve, this.delays()));
    await super.unsubscribe(channel);
    this.inFlight.delete(channel);
  }

  private enter(channel: string, what: string): void {
    if (this.inFlight.has(channel)) this.violations.push(`${what} overlaps another call on ${channel}`);
    this.inFlight.add(channel);
  }
}

function makeHub(options: AtrOptions = {}) {
  const atr = createAtr({ logger: silentLogger, ...options });
  return { atr, hub: getHub(atr) };
}

const sock = () => new FakeSocket();
const asWs = (s: FakeSocket) => s as unknown as WebSocket;
const settle = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await settle(2);
  }
}

describe('hub', () => {
  it('holds exactly the channels of open sockets, each subscribed once, whatever the order of joins and leaves (property)', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('join' as const), channel: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ kind: fc.constant('leave' as const), index: fc.nat() }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 12 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), fc.array(fc.integer({ min: 0, max: 10 }), { minLength: 1 }), async (ops, delays) => {
        let d = 0;
        const broker = new CheckingBroker(() => delays[d++ % delays.length]!);
        const { atr, hub } = makeHub({ broker });
        const open: Array<{ socket: FakeSocket; scope: string }> = [];
        try {
          for (const o of ops) {
            if (o.kind === 'join') {
              const socket = sock();
              const scope = `organization.${o.channel}`;
              hub.accept(asWs(socket), [scope], undefined);
              open.push({ socket, scope });
            } else if (o.kind === 'leave' && open.length > 0) {
              const [gone] = open.splice(o.index % open.length, 1);
              gone!.socket.terminate();
            } else if (o.kind === 'wait') {
              await settle(o.ms);
            }
          }
          await until(() => hub.size === open.length);
          const wanted = [...new Set(open.map((o) => atr.channelOf(o.scope)))].sort();
          await until(() => JSON.stringify([...broker.subscriptions()].sort()) === JSON.stringify(wanted));
          await until(() => open.every((o) => o.socket.sent.some((m) => m.startsWith('{"name":"atr.ready"'))));
          assert.deepEqual(broker.violations, []);
          assert.deepEqual(hub.channelNames().sort(), wanted);
          assert.equal(hub.metrics.channels, wanted.length);
          for (let c = 0; c <= 2; c++) await atr.publish({ scope: `organization.${c}`, name: 'post.created', data: { c } });
          await settle(2);
          for (const o of open) {
            assert.deepEqual(o.socket.events().map((m) => JSON.parse(m).data.c), [Number(o.scope.split('.')[1])]);
          }
        } finally {
          await atr.close();
        }
        assert.deepEqual(broker.subscriptions(), []);
      }),
      { numRuns: 40 },
    );
  });

  it('sends atr.ready with the scopes only once every channel is subscribed', async () => {
    const broker = new CheckingBroker(() => 20);
    const { atr, hub } = makeHub({ broker });
    try {
      const socket = sock();
      hub.accept(asWs(socket), ['organization.7', 'user.3'], undefined);
      await settle(5);
      assert.deepEqual(socket.sent, []);
      await until(() => socket.sent.length === 1);
      assert.deepEqual(JSON.parse(socket.sent[0]!), { name: 'atr.ready', scopes: ['organization.7', 'user.3'] });
    } finally {
      await atr.close();
    }
  });

  it('shares one subscription between the sockets of a channel and drops it with the last one', async () => {
    const { atr, hub } = makeHub();
    try {
      const a = sock();
      const b = sock();
      hub.accept(asWs(a), ['organization.7'], undefined);
      hub.accept(asWs(b), ['organization.7'], undefined);
      await until(() => a.sent.length === 1 && b.sent.length === 1);
      assert.deepEqual(atr.broker.subscriptions(), ['atr:{organization.7}']);
      assert.equal(hub.metrics.connections, 2);
      assert.equal(hub.metrics.channels, 1);
      await atr.publish({ scope: 'organization.7', name: 'post.created' });
      await settle(2);
      assert.equal(a.events().length, 1);
      assert.equal(a.events()[0], b.events()[0]);
      a.terminate();
      await settle(2);
      assert.deepEqual(atr.broker.subscriptions(), ['atr:{organization.7}']);
      b.close(1000);
      await until(() => atr.broker.subscriptions().length === 0);
      assert.equal(hub.metrics.connections, 0);
      assert.equal(hub.metrics.channels, 0);
    } finally {
      await atr.close();
    }
  });

  it('terminates a socket that does not answer a ping by the next sweep and keeps the ones that do', async () => {
    const { atr, hub } = makeHub({ heartbeatInterval: 20 });
    try {
      const live = sock();
      const silent = sock();
      silent.answersPings = false;
      hub.accept(asWs(live), ['organization.7'], undefined);
      hub.accept(asWs(silent), ['organization.8'], undefined);
      await until(() => silent.readyState === 3, 200);
      assert.equal(silent.closeCode, 1006);
      assert.equal(hub.metrics.heartbeatTimeouts, 1);
      await settle(100);
      assert.equal(live.readyState, 1);
      assert.ok(live.pings >= 3);
      await until(() => JSON.stringify(atr.broker.subscriptions()) === '["atr:{organization.7}"]');
    } finally {
      await atr.close();
    }
  });

  it('closes a socket with 1013 when a message would queue past maxBufferedBytes, but always sends a lone message', async () => {
    const { atr, hub } = makeHub({ maxBufferedBytes: 1000 });
    try {
      const s = sock();
      const reactor = hub.accept(asWs(s), ['organization.7'], undefined);
      await until(() => s.sent.length === 1);
      assert.equal(reactor.send('x'.repeat(5000)), true);  // nothing queued: goes out
      s.bufferedAmount = 5000;
      assert.equal(reactor.deliver('y'), false);
      assert.equal(s.closeCode, 1013);
      assert.equal(hub.metrics.slowClientsClosed, 1);
      assert.equal(hub.metrics.deliveriesDropped, 1);
      assert.equal(hub.size, 0);  // left the hub at once, before the close completes
      assert.equal(reactor.deliver('z'), false);
      assert.equal(hub.metrics.slowClientsClosed, 1);
    } finally {
      await atr.close();
    }
  });

  it('close() closes every socket with 1001, drops every subscription and refuses later sockets', async () => {
    const { atr, hub } = makeHub({ heartbeatInterval: 20 });
    const a = sock();
    const b = sock();
    hub.accept(asWs(a), ['organization.7'], undefined);
    hub.accept(asWs(b), ['organization.8'], undefined);
    await until(() => atr.broker.subscriptions().length === 2);
    await hub.close();
    assert.equal(a.closeCode, 1001);
    assert.equal(b.closeCode, 1001);
    assert.deepEqual(atr.broker.subscriptions(), []);
    assert.equal(hub.size, 0);
    const late = sock();
    hub.accept(asWs(late), ['organization.7'], undefined);
    assert.equal(late.closeCode, 1001);
    await atr.close();
  });

  it('is one per Atr and closes with it', async () => {
    const one = createAtr({ logger: silentLogger });
    const two = createAtr({ logger: silentLogger });
    assert.equal(getHub(one), getHub(one));
    assert.notEqual(getHub(one), getHub(two));
    const s = sock();
    getHub(one).accept(asWs(s), ['organization.7'], undefined);
    await one.close();
    assert.equal(s.closeCode, 1001);
    assert.equal(getHub(one).closed, true);
    await two.close();
  });
});
