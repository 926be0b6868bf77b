import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as ws from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import { MAX_BATCH_BYTES, TickBatcher, textFrames, writeFrames } from '../../src/server/fast-send';
import type { FrameBatch } from '../../src/server/fast-send';

/** ws's frame builder (exported by ws, missing from its types). */
const { Sender } = ws as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } };

function wsFrame(text: string): Buffer {
  return Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }));
}

/** A ws server and one connected client; `server` is the server side of the connection. */
async function pair(perMessageDeflate: boolean) {
  const httpServer = http.createServer();
  const wss = new WebSocketServer({ server: httpServer, perMessageDeflate });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(httpServer.address() as AddressInfo).port}`, { perMessageDeflate });
  const received: string[] = [];
  client.on('message', (data) => received.push(String(data)));
  await new Promise((resolve) => client.once('open', resolve));
  const server = await accepted;
  return {
    server,
    received,
    async close() {
      client.terminate();
      server.terminate();
      await new Promise((resolve) => wss.close(resolve));
      await new Promise((resolve) => httpServer.close(resolve));
    },
  };
}

async function eventually(check: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('fast send', () => {
  it('builds the same bytes ws builds for 7-bit, 16-bit and 64-bit lengths and multi-byte text', () => {
    const messages = ['{"a":1}', 'x'.repeat(125), 'y'.repeat(126), 'z'.repeat(65_535), 'w'.repeat(65_536), '{"name":"ünïcødé ✓ 🚀"}'];
    for (const m of messages) assert.deepEqual(textFrames([m]), wsFrame(m), `length ${m.length}`);
    assert.deepEqual(textFrames(messages), Buffer.concat(messages.map(wsFrame)));
  });

  it('hands over what each channel received in one turn, once, in order, at the end of the turn', async () => {
    const batches: Array<[string, string[]]> = [];
    const batcher = new TickBatcher((channel, batch) => batches.push([channel, [...batch.messages]]));
    batcher.add('a', '1');
    batcher.add('b', 'x');
    batcher.add('a', '2');
    await Promise.resolve();
    assert.deepEqual(batches, []);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(batches, [['a', ['1', '2']], ['b', ['x']]]);
    batcher.add('a', '3');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(batches[2], ['a', ['3']]);
  });

  it('hands a channel over at once when its batch reaches MAX_BATCH_BYTES, so memory stays bounded', async () => {
    const batches: FrameBatch[] = [];
    const batcher = new TickBatcher((_channel, batch) => batches.push(batch));
    const big = 'b'.repeat(MAX_BATCH_BYTES / 4);
    for (let i = 0; i < 8; i++) batcher.add('a', big);
    assert.equal(batches.length, 2);
    assert.deepEqual(batches.map((b) => b.messages.length), [4, 4]);
    assert.deepEqual(batches[0].bytes, Buffer.concat(batches[0].messages.map(wsFrame)));
    batcher.add('a', 'tail');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(batches.length, 3);
  });

  it('writes prebuilt frames straight to the socket, in order with what ws sends itself', async () => {
    const t = await pair(false);
    try {
      t.server.send('first');
      assert.equal(writeFrames(t.server, textFrames(['second', 'third'])), true);
      t.server.send('fourth');
      await eventually(() => t.received.length === 4);
      assert.deepEqual(t.received, ['first', 'second', 'third', 'fourth']);
      assert.ok(t.server.bufferedAmount >= 0);
    } finally {
      await t.close();
    }
  });

  it('declines when the connection compresses, and when it is not open', async () => {
    const t = await pair(true);
    try {
      assert.equal(writeFrames(t.server, textFrames(['x'])), false);
    } finally {
      await t.close();
    }
    const u = await pair(false);
    try {
      u.server.close();
      assert.equal(writeFrames(u.server, textFrames(['x'])), false);
    } finally {
      await u.close();
    }
  });
});
