import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { AtrClient, RESUME_PARAM } from '../../src/client/index';

/** A stand-in endpoint that records each upgrade URL and runs `script` on each connection. */
async function recordingServer(script: (ws: import('ws').WebSocket, n: number) => void) {
  const urls: string[] = [];
  const wss = new WebSocketServer({ noServer: true });
  const server = http.createServer();
  server.on('upgrade', (req, socket, head) => {
    urls.push(req.url!);
    wss.handleUpgrade(req, socket, head, (ws) => script(ws, urls.length));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/organization/7?token=t`;
  return {
    url,
    urls,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const resumeOf = (url: string) => {
  const value = new URL(url, 'http://x').searchParams.get(RESUME_PARAM);
  return value === null ? undefined : JSON.parse(value);
};

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('client resume', () => {
  it('asks, on reconnect, for what came after the last event it saw in each scope', async () => {
    const server = await recordingServer((ws, n) => {
      if (n === 1) {
        ws.send('{"id":"1764780000000-000001","name":"post.created","routingKey":"organization.7.post.created"}');
        ws.send('{"id":"1764780000000-000002","name":"post.updated","routingKey":"organization.7.post.updated"}');
        setTimeout(() => ws.close(1012, 'restart'), 20);
      }
    });
    const client = new AtrClient({ url: server.url, reconnect: { initialDelay: 10, maxDelay: 50, jitter: 0 }, pingInterval: 0 });
    await until(() => server.urls.length === 2);
    assert.equal(resumeOf(server.urls[0]!), undefined);
    assert.deepEqual(resumeOf(server.urls[1]!), { 'organization.7': '1764780000000-000002' });
    assert.equal(new URL(server.urls[1]!, 'http://x').searchParams.get('token'), 't');
    await client.close();
    await server.close();
  });

  it('starts from the positions it was given (snapshot then subscribe)', async () => {
    const server = await recordingServer(() => {});
    const client = new AtrClient({ url: server.url, positions: { 'organization.7': '5-000000' }, pingInterval: 0 });
    await until(() => server.urls.length === 1);
    assert.deepEqual(resumeOf(server.urls[0]!), { 'organization.7': '5-000000' });
    await client.close();
    await server.close();
  });

  it('takes the server position after atr.reset, and can be told not to resume', async () => {
    const server = await recordingServer((ws, n) => {
      if (n === 1) {
        ws.send('{"name":"atr.reset","scope":"organization.7","position":"9-000000"}');
        setTimeout(() => ws.close(1012, 'restart'), 20);
      }
    });
    const client = new AtrClient({ url: server.url, positions: { 'organization.7': '1-000000' }, reconnect: { initialDelay: 10, maxDelay: 50, jitter: 0 }, pingInterval: 0 });
    const resets: unknown[] = [];
    client.on('atr.reset', (m) => resets.push(m));
    await until(() => server.urls.length === 2);
    assert.deepEqual(resets, [{ name: 'atr.reset', scope: 'organization.7', position: '9-000000' }]);
    assert.deepEqual(resumeOf(server.urls[1]!), { 'organization.7': '9-000000' });
    await client.close();

    const plain = new AtrClient({ url: server.url, positions: { 'organization.7': '1-000000' }, resume: false, pingInterval: 0 });
    await until(() => server.urls.length === 3);
    assert.equal(resumeOf(server.urls[2]!), undefined);
    await plain.close();
    await server.close();
  });

  it('refuses positions that are not a map of ids', () => {
    assert.throws(() => new AtrClient({ url: 'ws://x', positions: { a: 1 as never }, autoConnect: false }), /must map scopes to event ids; got number for "a"/);
  });
});
