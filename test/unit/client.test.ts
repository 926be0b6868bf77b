import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { AtrClient } from '../../src/client/index';
import type { CloseInfo, NodeAtrClientOptions, ReconnectInfo } from '../../src/client/index';

/** A stand-in atr endpoint: each upgrade is refused with `refuseWith()`'s status, or accepted and handed to `onConnection`. */
interface FakeServer {
  url: string;
  upgrades: number;
  /** Answer `{"type":"ping"}` with `atr.pong` (true). */
  answerPings: boolean;
  sockets: Set<WebSocket>;
  refuseWith: () => number | undefined;
  onConnection: (ws: WebSocket) => void;
  close(): Promise<void>;
}

const opened: Array<{ close(): Promise<void> }> = [];

async function fakeServer(): Promise<FakeServer> {
  const wss = new WebSocketServer({ noServer: true });
  const httpServer = http.createServer((_req, res) => res.writeHead(404).end());
  const fake: FakeServer = {
    url: '',
    upgrades: 0,
    answerPings: true,
    sockets: new Set(),
    refuseWith: () => undefined,
    onConnection: (ws) => ws.send('{"name":"atr.ready","scopes":["organization.7"]}'),
    close: async () => {
      for (const ws of fake.sockets) ws.terminate();
      wss.close();
      httpServer.closeAllConnections();
      await new Promise((r) => httpServer.close(r));
    },
  };
  httpServer.on('upgrade', (req, socket, head) => {
    fake.upgrades++;
    const status = fake.refuseWith();
    if (status !== undefined) {
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      fake.sockets.add(ws);
      ws.on('close', () => fake.sockets.delete(ws));
      ws.on('message', (data) => {
        if (JSON.parse(String(data)).type === 'ping' && fake.answerPings) ws.send('{"name":"atr.pong"}');
      });
      fake.onConnection(ws);
    });
  });
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  fake.url = `ws://127.0.0.1:${(httpServer.address() as AddressInfo).port}/organization/7`;
  opened.push(fake);
  return fake;
}

function client(url: string, extra: Partial<NodeAtrClientOptions> = {}): AtrClient {
  const c = new AtrClient({ url, reconnect: { initialDelay: 20, maxDelay: 200, jitter: 0 }, stableAfter: 10_000, ...extra });
  opened.push(c);
  return c;
}

function next<T = unknown>(c: AtrClient, name: string): Promise<T> {
  return new Promise((resolve) => c.once(name, resolve));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await sleep(5);
  }
}

afterEach(async () => {
  for (const thing of opened.splice(0).reverse()) await thing.close();
});

describe('AtrClient (Node)', () => {
  it('hands each event to the listeners of its name and of "*", and notes its id under its scope', async () => {
    const server = await fakeServer();
    server.onConnection = (ws) => {
      ws.send('{"name":"atr.ready","scopes":["organization.7"]}');
      ws.send('{"id":"10-000001","name":"post.created","routingKey":"organization.7.post.created","record":{"id":1}}');
      ws.send('{"id":"10-000002","name":"post.updated","routingKey":"organization.7.post.updated","record":{"id":1}}');
    };
    const c = client(server.url);
    const created: unknown[] = [];
    const all: string[] = [];
    c.on('post.created', (e) => created.push(e.record));
    c.on('*', (e) => all.push(e.name));
    const ready = next<{ scopes: string[] }>(c, 'atr.ready');
    const updated = next(c, 'post.updated');
    await next(c, 'open');
    assert.deepEqual((await ready).scopes, ['organization.7']);
    await updated;
    assert.deepEqual(created, [{ id: 1 }]);
    assert.deepEqual(all, ['post.created', 'post.updated']);
    assert.deepEqual(c.positions.toJSON(), { 'organization.7': '10-000002' });
    assert.deepEqual(c.scopes, ['organization.7']);
  });

  it('reconnects after the server drops it, waiting longer after each failed try', async () => {
    const server = await fakeServer();
    server.onConnection = (ws) => ws.close(1011, 'boom');
    const c = client(server.url, { reconnect: { initialDelay: 20, maxDelay: 1000, jitter: 0 } });
    const tries: ReconnectInfo[] = [];
    c.on('reconnecting', (info) => tries.push(info));
    while (tries.length < 4) await next(c, 'reconnecting');
    await c.close();
    assert.deepEqual(tries.slice(0, 4).map((t) => t.delay), [20, 40, 80, 160]);
    assert.ok(server.upgrades >= 4);
  });

  it('comes back after a server that was down starts again', async () => {
    const server = await fakeServer();
    const c = client(server.url);
    await next(c, 'atr.ready');
    server.refuseWith = () => 503;
    for (const ws of server.sockets) ws.close(1001, 'going away');
    await next(c, 'reconnecting');
    await next(c, 'reconnecting');
    server.refuseWith = () => undefined;
    await next(c, 'atr.ready');
    assert.equal(c.state, 'open');
  });

  for (const code of [4401, 4403, 1008]) {
    it(`does not reconnect after close ${code}`, async () => {
      const server = await fakeServer();
      server.onConnection = (ws) => ws.close(code, 'no');
      let refused: CloseInfo | undefined;
      const c = client(server.url, { onRefused: (info) => (refused = info) });
      const reconnecting: unknown[] = [];
      c.on('reconnecting', (i) => reconnecting.push(i));
      const info = await next<CloseInfo>(c, 'refused');
      await sleep(150);
      assert.equal(info.code, code);
      assert.equal(info.refused, true);
      assert.equal(refused, info);
      assert.equal(c.state, 'refused');
      assert.equal(server.upgrades, 1);
      assert.deepEqual(reconnecting, []);
    });
  }

  for (const status of [401, 403]) {
    it(`does not reconnect after an HTTP ${status} refusal of the upgrade, and reports the status`, async () => {
      const server = await fakeServer();
      server.refuseWith = () => status;
      const c = client(server.url);
      const info = await next<CloseInfo>(c, 'refused');
      await sleep(150);
      assert.equal(info.status, status);
      assert.equal(info.wasOpen, false);
      assert.equal(server.upgrades, 1);
      assert.equal(c.state, 'refused');
    });
  }

  it('retries a failed handshake with backoff and stops when shouldReconnect says no', async () => {
    const server = await fakeServer();
    server.refuseWith = () => 500;
    const asked: CloseInfo[] = [];
    const c = client(server.url, { shouldReconnect: (info) => (asked.push(info), asked.length < 3) });
    await until(() => c.state === 'closed');
    await sleep(150);
    assert.equal(server.upgrades, 3);
    assert.deepEqual(asked.map((i) => [i.status, i.wasOpen, i.failures]), [[500, false, 1], [500, false, 2], [500, false, 3]]);
    assert.equal(c.state, 'closed');
  });

  it('opens one socket only when the app calls connect() while shouldReconnect is still deciding', async () => {
    const server = await fakeServer();
    let answer: (again: boolean) => void = () => {};
    let first = true;
    server.onConnection = (ws) => {
      if (first) ws.close(1011, 'once');
      else ws.send('{"name":"atr.ready","scopes":[]}');
      first = false;
    };
    const c = client(server.url, { shouldReconnect: () => new Promise<boolean>((resolve) => (answer = resolve)) });
    await next(c, 'close');
    c.connect();
    await next(c, 'atr.ready');
    answer(true);
    await sleep(150);
    assert.equal(server.upgrades, 2);
    assert.equal(server.sockets.size, 1);
    assert.equal(c.state, 'open');
  });

  it('pings the server on an interval and stays while it answers', async () => {
    const server = await fakeServer();
    server.answerPings = true;
    const pings: string[] = [];
    server.onConnection = (ws) => {
      ws.on('message', (d) => pings.push(String(d)));
      ws.send('{"name":"atr.ready","scopes":[]}');
    };
    const c = client(server.url, { pingInterval: 40, pongTimeout: 60 });
    await next(c, 'atr.ready');
    await sleep(300);
    assert.ok(pings.length >= 4, `${pings.length} pings`);
    assert.equal(pings[0], '{"type":"ping"}');
    assert.equal(c.state, 'open');
    assert.equal(server.upgrades, 1);
  });

  it('reconnects when the server goes silent', async () => {
    const server = await fakeServer();
    server.answerPings = false;
    const c = client(server.url, { pingInterval: 40, pongTimeout: 60 });
    await next(c, 'atr.ready');
    const started = Date.now();
    const info = await next<CloseInfo>(c, 'close');
    assert.equal(info.code, 4000);
    assert.ok(Date.now() - started < 1500, 'noticed within about one ping interval + pong timeout, not the default 35 s');
    await next(c, 'atr.ready');
    assert.equal(server.upgrades, 2);
  });

  it('stops for good on close(): no reconnect, and connect() throws', async () => {
    const server = await fakeServer();
    const c = client(server.url);
    await next(c, 'atr.ready');
    await c.close();
    await sleep(100);
    assert.equal(c.state, 'closed');
    assert.equal(server.upgrades, 1);
    assert.equal(server.sockets.size, 0);
    assert.throws(() => c.connect(), /closed/);
  });

  it('sends the headers it is given with the upgrade request', async () => {
    const plain = http.createServer();
    const got = new Promise<string | undefined>((resolve) => plain.on('upgrade', (req, socket) => {
      resolve(req.headers.authorization);
      socket.destroy();
    }));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    opened.push({ close: () => new Promise<void>((r) => plain.close(() => r())) });
    const c = client(`ws://127.0.0.1:${(plain.address() as AddressInfo).port}/`, { headers: { authorization: 'Bearer abc' } });
    assert.equal(await got, 'Bearer abc');
    await c.close();
  });

  it('rejects a missing url and a wrong option with a message that names it', () => {
    assert.throws(() => new AtrClient({ url: '' }), { name: 'TypeError', message: 'The "url" option must be a ws:// or wss:// URL, or a function that returns one' });
    assert.throws(() => new AtrClient({ url: 'ws://x', pingInterval: -1, autoConnect: false }), {
      message: 'The "pingInterval" option must be a number of milliseconds >= 0; got -1',
    });
    assert.throws(() => new AtrClient({ url: 'ws://x', reconnect: { jitter: 2 }, autoConnect: false }), {
      message: 'The "reconnect.jitter" option must be a number from 0 to 1; got 2',
    });
  });
});
