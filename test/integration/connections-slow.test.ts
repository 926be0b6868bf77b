import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { WebSocket } from 'ws';
import { createAtr } from '../../src/atr';
import { silentLogger } from '../../src/logger';
import { OrganizationScope, TokenAuthenticator, connect, eventually, sleep, startApp } from '../helpers/connections';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Live memory: the heap and the buffers outside it, after a full collection. */
function liveBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const MiB = 1024 * 1024;

describe('slow clients', () => {
  it('closes a client that never reads with 1013 once maxBufferedBytes is queued, and server memory stays bounded', async () => {
    const atr = createAtr({ authenticateWith: TokenAuthenticator, scopeWith: OrganizationScope, logger: silentLogger, maxBufferedBytes: MiB, historyMaxLength: 4 });
    const t = await startApp(atr);
    const slow = await connect(`${t.base}/ws/organization/7?token=alice`);
    try {
      // The client stops reading: the kernel buffers fill, then the server's.
      (slow.ws as any)._socket.pause();
      const payload = 'x'.repeat(256 * 1024);
      const events = 400;  // 100 MiB in all, 100 times the bound
      const before = liveBytes();
      let peak = 0;
      for (let i = 1; i <= events; i++) {
        await atr.publish({ scope: 'organization.7', name: 'blob.created', data: { i, payload } });
        if (i % 20 === 0) peak = Math.max(peak, liveBytes() - before);
      }
      assert.equal(t.router.hub.metrics.slowClientsClosed, 1);
      assert.equal(t.router.hub.metrics.connections, 0);
      // Unbounded, the client's backlog alone would be ~100 MiB.
      assert.ok(peak < 8 * MiB, `server memory grew by ${(peak / MiB).toFixed(1)} MiB`);
      console.log(`slow client: live memory grew by at most ${(peak / MiB).toFixed(1)} MiB while ${events / 4} MiB were published to it`);
      (slow.ws as any)._socket.resume();
      const { code } = await slow.closed;
      assert.ok(code === 1013 || code === 1006, `closed with ${code}`);
      await eventually(() => atr.broker.subscriptions().length === 0);
    } finally {
      slow.ws.terminate();
      await t.close();
      await atr.close();
    }
  });

  it('does not slow the other clients of the channel while one refuses to read', async () => {
    const atr = createAtr({ authenticateWith: TokenAuthenticator, scopeWith: OrganizationScope, logger: silentLogger, maxBufferedBytes: MiB, historyMaxLength: 4 });
    const t = await startApp(atr);
    const slow = await connect(`${t.base}/ws/organization/7?token=alice`);
    // The fast client counts and forgets.
    const fast = new WebSocket(`${t.base}/ws/organization/7?token=alice`);
    let fastEvents = 0;
    fast.on('message', (data) => {
      if (!String(data).startsWith('{"name":"atr.')) fastEvents++;
    });
    await new Promise((resolve) => fast.once('message', resolve));
    try {
      (slow.ws as any)._socket.pause();
      const payload = 'x'.repeat(256 * 1024);
      const events = 200;
      let slowestCatchUp = 0;
      for (let i = 1; i <= events; i++) {
        await atr.publish({ scope: 'organization.7', name: 'blob.created', data: { i, payload } });
        // Client and server share this process: let the fast client read. (A burst
        // larger than maxBufferedBytes plus the kernel's buffers, written in one
        // tick, would close any client.)
        await new Promise((resolve) => setImmediate(resolve));
        if (i % 20 === 0) {
          const started = Date.now();
          await eventually(() => fastEvents === i, 10_000, `fast client at ${i}`);
          slowestCatchUp = Math.max(slowestCatchUp, Date.now() - started);
        }
      }
      assert.equal(fastEvents, events);
      assert.equal(t.router.hub.metrics.slowClientsClosed, 1);
      assert.equal(t.router.hub.metrics.connections, 1);
      assert.ok(slowestCatchUp < 2000, `the fast client waited ${slowestCatchUp} ms for 20 events`);
    } finally {
      fast.close();
      if (fast.readyState !== WebSocket.CLOSED) await new Promise((resolve) => fast.once('close', resolve));
      slow.ws.terminate();
      await t.close();
      await atr.close();
    }
  });

  it('sends the 1013 close frame to a slow client that does read, eventually', async () => {
    const atr = createAtr({ authenticateWith: TokenAuthenticator, scopeWith: OrganizationScope, logger: silentLogger, maxBufferedBytes: 64 * 1024, historyMaxLength: 4 });
    const t = await startApp(atr);
    const slow = await connect(`${t.base}/ws/organization/7?token=alice`);
    try {
      (slow.ws as any)._socket.pause();
      const payload = 'y'.repeat(64 * 1024);
      for (let i = 0; i < 200 && t.router.hub.metrics.slowClientsClosed === 0; i++) {
        await atr.publish({ scope: 'organization.7', name: 'blob.created', data: { payload } });
        await sleep(1);
      }
      assert.equal(t.router.hub.metrics.slowClientsClosed, 1);
      (slow.ws as any)._socket.resume();  // reads again within the grace: gets the close frame
      assert.equal((await slow.closed).code, 1013);
      await eventually(() => atr.broker.subscriptions().length === 0);
    } finally {
      slow.ws.terminate();
      await t.close();
      await atr.close();
    }
  });
});
