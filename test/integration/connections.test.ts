import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { scopeKey } from '../../src/routing';
import { clientMessageHandlers } from '../../src/server/client-messages';
import { RequestAuthenticator } from '../../src/server/request-authenticator';
import { RequestScope } from '../../src/server/request-scope';
import {
  OrganizationScope, SlowBroker, TokenAuthenticator, connect, eventually, rawUpgrade, sleep, startApp,
} from '../helpers/connections';
import { makeAtr } from '../helpers/connections';

/** Anybody may listen to any organization: the scope value comes straight from the path, encoded. */
class AnyOrganization extends RequestScope {
  override routingKey(): string {
    return this.scopeKey('organization', this.segments[1] ?? '');
  }
}

/** The naive scope users write: the raw segment pasted into the key. atr must refuse what it cannot take exactly. */
class NaiveOrganization extends RequestScope {
  override routingKey(): string {
    return `organization.${this.segments[1]}`;
  }
}

describe('connections', () => {
  it('C1: a socket on organization 7 gets its events; sockets on 70 and 77 do not', async () => {
    const { atr } = makeAtr();
    const t = await startApp(atr);
    try {
      const on7 = await connect(`${t.base}/ws/organization/7?token=alice`);
      const on70 = await connect(`${t.base}/ws/organization/70?token=carol`);
      const on77 = await connect(`${t.base}/ws/organization/77?token=dave`);
      await atr.publish({ scope: scopeKey('organization', 7), name: 'post.created', data: { id: 1 } });
      await atr.publish({ scope: scopeKey('organization', 70), name: 'post.created', data: { id: 70 } });
      await on7.waitFor((m) => m.name === 'post.created');
      await on70.waitFor((m) => m.data?.id === 70);
      await sleep(30);
      assert.deepEqual(on7.events().map((m) => m.data.id), [1]);
      assert.deepEqual(on70.events().map((m) => m.data.id), [70]);
      assert.deepEqual(on77.events(), []);
      await Promise.all([on7.close(), on70.close(), on77.close()]);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('C2: scope values that look like patterns name their own exact scope, or are refused', async () => {
    const values = ['7.post', '7*', '7?', '[78]', '7:8'];
    const exact = makeAtr({ authenticateWith: RequestAuthenticator, scopeWith: AnyOrganization });
    const naive = makeAtr({ authenticateWith: RequestAuthenticator, scopeWith: NaiveOrganization });
    const e = await startApp(exact.atr);
    const n = await startApp(naive.atr);
    try {
      const clients = [];
      for (const value of values) {
        const client = await connect(`${e.base}/ws/organization/${encodeURIComponent(value)}`);
        assert.deepEqual(client.messages[0].scopes, [scopeKey('organization', value)]);
        clients.push(client);
        // The naive scope would build "organization.7.post" or "organization.7*": refused.
        const res = await rawUpgrade(n.port, `/ws/organization/${encodeURIComponent(value)}`);
        assert.equal(res.status, 403, value);
      }
      assert.deepEqual(naive.atr.broker.subscriptions(), []);
      const on7 = await connect(`${e.base}/ws/organization/7`);
      await exact.atr.publish({ scope: 'organization.7', name: 'post.created', data: { org: 7 } });
      await exact.atr.publish({ scope: 'organization.8', name: 'post.created', data: { org: 8 } });
      await on7.waitFor((m) => m.data?.org === 7);
      await sleep(30);
      for (const client of clients) assert.deepEqual(client.events(), []);
      assert.deepEqual(on7.events().map((m) => m.data.org), [7]);
      await Promise.all([...clients, on7].map((c) => c.close()));
    } finally {
      await e.close();
      await n.close();
      await exact.atr.close();
      await naive.atr.close();
    }
  });

  it('keeps nasty scope values apart over real sockets: dots, *, ?, [, :, spaces, unicode, 10 kB', async () => {
    // ("." and ".." alone cannot be sent by a URL-parsing client: it resolves them.)
    const values = ['7', '7.post', '7.', '.7', '7*', '*', '7?', '?', '[78]', '7:8', 'a b', ' ', 'café', '💥', '%2E', 'x'.repeat(10_000)];
    const { atr } = makeAtr({ authenticateWith: RequestAuthenticator, scopeWith: AnyOrganization });
    const t = await startApp(atr);
    try {
      const clients = [];
      for (const value of values) clients.push(await connect(`${t.base}/ws/organization/${encodeURIComponent(value)}`));
      assert.equal(new Set(atr.broker.subscriptions()).size, values.length);
      for (const value of values) {
        await atr.publish({ scope: scopeKey('organization', value), name: 'post.created', data: { value: value.slice(0, 20) } });
      }
      for (let i = 0; i < values.length; i++) await clients[i]!.waitFor((m) => m.name === 'post.created');
      await sleep(30);
      for (let i = 0; i < values.length; i++) {
        assert.deepEqual(clients[i]!.events().map((m) => m.data.value), [values[i]!.slice(0, 20)], `value ${values[i]!.slice(0, 20)}`);
      }
      await Promise.all(clients.map((c) => c.close()));
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('C4: after 20 reconnects the broker holds one subscription per open socket and the event arrives once', async () => {
    const broker = new SlowBroker();
    const { atr } = makeAtr({ broker });
    const t = await startApp(atr);
    try {
      for (let i = 0; i < 20; i++) {
        const c = await connect(`${t.base}/ws/organization/7?token=alice`);
        // Leave without waiting: the unsubscribe races the next subscribe.
        if (i % 2 === 0) c.ws.terminate();
        else c.ws.close();
      }
      const last = await connect(`${t.base}/ws/organization/7?token=alice`);
      await eventually(() => t.router.hub.metrics.connections === 1, 3000, 'one connection');
      await sleep(100);  // let every in-flight (un)subscribe land
      assert.deepEqual(broker.subscriptions(), ['atr:{organization.7}']);
      assert.deepEqual(t.router.hub.channelNames(), ['atr:{organization.7}']);
      await atr.publish({ scope: 'organization.7', name: 'post.created', data: { id: 1 } });
      await last.waitFor((m) => m.name === 'post.created');
      await sleep(50);
      assert.equal(last.events().length, 1);
      await last.close();
      await eventually(() => broker.subscriptions().length === 0, 3000, 'no subscription');
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('C9: terminates and unsubscribes a client that stops answering pings within two intervals; an idle client that answers stays', async () => {
    const interval = 200;
    const { atr } = makeAtr({ heartbeatInterval: interval });
    const t = await startApp(atr);
    try {
      const answering = await connect(`${t.base}/ws/organization/7?token=alice`);
      const silent = await connect(`${t.base}/ws/organization/8?token=bob`, { autoPong: false });
      const start = Date.now();
      const { code } = await silent.closed;
      const took = Date.now() - start;
      assert.equal(code, 1006);  // terminated, no close frame
      assert.ok(took <= 2 * interval + 150, `terminated after ${took} ms`);
      await eventually(() => !atr.broker.subscriptions().includes('atr:{organization.8}'));
      assert.equal(t.router.hub.metrics.heartbeatTimeouts, 1);
      await sleep(4 * interval);
      assert.equal(answering.ws.readyState, WebSocket.OPEN);
      assert.deepEqual(atr.broker.subscriptions(), ['atr:{organization.7}']);
      await answering.close();
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('answers {"type":"ping"} with atr.pong and malformed or unknown messages with atr.error, and goes on', async () => {
    const { atr } = makeAtr();
    const t = await startApp(atr);
    try {
      const a = await connect(`${t.base}/ws/organization/7?token=alice`);
      const other = await connect(`${t.base}/ws/organization/7?token=alice`);
      a.ws.send('{"type":"ping"}');
      await a.waitFor((m) => m.name === 'atr.pong');
      const garbage: Array<string | Buffer> = ['not json', '[1,2]', 'null', '{"type":42}', '{"type":"subscribe-to-everything"}', Buffer.from([1, 2, 3])];
      for (const g of garbage) a.ws.send(g);
      await eventually(() => a.messages.filter((m) => m.name === 'atr.error').length === garbage.length);
      const errors = a.messages.filter((m) => m.name === 'atr.error');
      assert.ok(errors.every((m) => m.code === 'ATR_ERR_CLIENT_MESSAGE'));
      assert.equal(errors[4].message, 'unknown message type "subscribe-to-everything"');
      assert.equal(errors[5].message, 'binary frames are not accepted; send JSON text');
      await atr.publish({ scope: 'organization.7', name: 'post.created' });
      await a.waitFor((m) => m.name === 'post.created');
      await other.waitFor((m) => m.name === 'post.created');
      await Promise.all([a.close(), other.close()]);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('closes a client that sends invalid UTF-8 (1007) without touching the others', async () => {
    const { atr } = makeAtr();
    const t = await startApp(atr);
    try {
      const a = await connect(`${t.base}/ws/organization/7?token=alice`);
      const other = await connect(`${t.base}/ws/organization/7?token=alice`);
      // A text frame with bytes that are not UTF-8, written raw past the client's checks.
      (a.ws as any)._socket.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe]));
      assert.equal((await a.closed).code, 1007);
      await atr.publish({ scope: 'organization.7', name: 'post.created' });
      await other.waitFor((m) => m.name === 'post.created');
      await other.close();
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('closes a client whose frame passes maxPayload with 1009', async () => {
    const { atr } = makeAtr({ maxPayload: 1024 });
    const t = await startApp(atr);
    try {
      const a = await connect(`${t.base}/ws/organization/7?token=alice`);
      a.ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(2000) }));
      assert.equal((await a.closed).code, 1009);
      await eventually(() => atr.broker.subscriptions().length === 0);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('closes a client that sends more than maxClientMessagesPerSecond with 1008', async () => {
    const { atr } = makeAtr({ maxClientMessagesPerSecond: 5 });
    const t = await startApp(atr);
    try {
      const a = await connect(`${t.base}/ws/organization/7?token=alice`);
      for (let i = 0; i < 20; i++) a.ws.send('{"type":"ping"}');
      const { code } = await a.closed;
      assert.equal(code, 1008);
      assert.equal(a.messages.filter((m) => m.name === 'atr.pong').length, 5);
      assert.equal(t.router.hub.metrics.rateLimited, 1);
      // A client within the rate is never cut off.
      const b = await connect(`${t.base}/ws/organization/7?token=alice`);
      for (let i = 0; i < 6; i++) {
        b.ws.send('{"type":"ping"}');
        await sleep(250);
      }
      await eventually(() => b.messages.filter((m) => m.name === 'atr.pong').length === 6);
      assert.equal(b.ws.readyState, WebSocket.OPEN);
      await b.close();
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('closes with 1011 and reports when a client message handler throws; the others go on', async () => {
    const { atr, errors } = makeAtr();
    const t = await startApp(atr);
    clientMessageHandlers.set('boom', () => { throw new Error('handler bug'); });
    try {
      const a = await connect(`${t.base}/ws/organization/7?token=alice`);
      const other = await connect(`${t.base}/ws/organization/7?token=alice`);
      a.ws.send('{"type":"boom"}');
      assert.equal((await a.closed).code, 1011);
      assert.match(errors[0]!.message, /handler bug/);
      await atr.publish({ scope: 'organization.7', name: 'post.created' });
      await other.waitFor((m) => m.name === 'post.created');
      await other.close();
    } finally {
      clientMessageHandlers.delete('boom');
      await t.close();
      await atr.close();
    }
  });

  for (const stage of ['authenticator', 'scope'] as const) {
    it(`leaves no subscription, reactor or handshake behind when the client leaves during an async ${stage}`, async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => { entered = resolve; });
      class SlowAuth extends TokenAuthenticator {
        override async matches(): Promise<boolean> {
          if (stage === 'authenticator') {
            entered();
            await gate;
          }
          return super.matches();
        }
      }
      class SlowScope extends OrganizationScope {
        override async valid(): Promise<boolean> {
          if (stage === 'scope') {
            entered();
            await gate;
          }
          return super.valid();
        }
      }
      const { atr } = makeAtr({ authenticateWith: SlowAuth, scopeWith: SlowScope });
      const t = await startApp(atr);
      try {
        const ws = new WebSocket(`${t.base}/ws/organization/7?token=alice`);
        ws.on('error', () => undefined);
        await inside;
        assert.equal(t.router.hub.metrics.handshakesPending, 1);
        ws.terminate();
        await sleep(30);
        release();
        await eventually(() => t.router.hub.metrics.handshakesPending === 0);
        await sleep(50);
        assert.equal(t.router.hub.metrics.connections, 0);
        assert.deepEqual(atr.broker.subscriptions(), []);
      } finally {
        await t.close();
        await atr.close();
      }
    });
  }

  it('refuses with 503 and reports when the authenticator hangs past one heartbeat interval', async () => {
    class Hanging extends TokenAuthenticator {
      override matches(): Promise<boolean> {
        return new Promise(() => undefined);  // a lookup that never returns
      }
    }
    const { atr, errors } = makeAtr({ authenticateWith: Hanging, heartbeatInterval: 100 });
    const t = await startApp(atr);
    try {
      const started = Date.now();
      const res = await rawUpgrade(t.port, '/ws/organization/7?token=alice');
      assert.equal(res.status, 503);
      assert.ok(Date.now() - started < 1000);
      assert.match(errors[0]!.message, /took longer than 100 ms/);
      assert.equal(t.router.hub.metrics.handshakesPending, 0);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('closes the sockets whose channel cannot be subscribed with 1011 and reports it', async () => {
    class FailingBroker extends SlowBroker {
      override async subscribe(): Promise<void> {
        throw new Error('subscribe refused');
      }
    }
    const { atr, errors } = makeAtr({ broker: new FailingBroker() });
    const t = await startApp(atr);
    try {
      await assert.rejects(connect(`${t.base}/ws/organization/7?token=alice`), { code: 1011 });
      assert.match(errors[0]!.message, /subscribe refused/);
      assert.equal(t.router.hub.metrics.subscribeFailures, 1);
      await eventually(() => t.router.hub.metrics.connections === 0);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('answers 503 before the upgrade while the broker has never been reached, and opens once it is', async () => {
    let reachable = false;
    class LateBroker extends SlowBroker {
      override async connect(): Promise<void> {
        if (!reachable) throw new Error('connection refused');
      }
    }
    const { atr } = makeAtr({ broker: new LateBroker() });
    const t = await startApp(atr);
    try {
      const refused = await rawUpgrade(t.port, '/ws/organization/7?token=alice');
      assert.deepEqual([refused.status, refused.upgraded], [503, false]);
      assert.equal(t.router.hub.metrics.connections, 0);
      reachable = true;
      const client = await connect(`${t.base}/ws/organization/7?token=alice`);
      await client.close();
    } finally {
      await t.close();
      await atr.close();
    }
  });
});
