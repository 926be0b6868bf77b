import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createAtr } from '../../src/atr';
import { silentLogger } from '../../src/logger';
import {
  OrganizationScope, TokenAuthenticator, connect, eventually, rawUpgrade, sleep, startApp,
} from '../helpers/connections';
import type { TestApp } from '../helpers/connections';

const warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

function openSockets(t: TestApp): Promise<number> {
  return new Promise((resolve, reject) => t.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** An authenticator that takes 0–3 ms, as a database lookup would. */
class SlowTokenAuthenticator extends TokenAuthenticator {
  override async matches(): Promise<boolean> {
    await sleep(Math.random() * 3);
    return super.matches();
  }
}

describe('no leaks', () => {
  before(() => process.on('warning', onWarning));
  after(() => process.off('warning', onWarning));

  it('C5: after 500 connect/close cycles the client set is empty, with no MaxListenersExceeded warning and no timers left', async () => {
    const atr = createAtr({ authenticateWith: TokenAuthenticator, scopeWith: OrganizationScope, logger: silentLogger, heartbeatInterval: 1000 });
    const t = await startApp(atr);
    try {
      const timersBefore = timers();
      for (let i = 0; i < 500; i++) {
        const c = await connect(`${t.base}/ws/organization/7?token=alice`);
        await c.close();
      }
      await eventually(() => t.router.hub.size === 0, 3000, 'no reactor');
      assert.equal(t.router.hub.metrics.connections, 0);
      assert.equal(t.router.hub.metrics.channels, 0);
      assert.deepEqual(atr.broker.subscriptions(), []);
      await eventually(() => timers() <= timersBefore, 3000, 'timers back');
      assert.equal(await openSockets(t), 0);
      assert.deepEqual(warnings.filter((w) => w.name === 'MaxListenersExceededWarning'), []);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('after 1,000 cycles that close at any moment (mid-handshake, during the authenticator, during sends) every count is back where it started', async () => {
    const atr = createAtr({ authenticateWith: SlowTokenAuthenticator, scopeWith: OrganizationScope, logger: silentLogger, heartbeatInterval: 1000, historyMaxLength: 10 });
    const t = await startApp(atr);
    const brokerListeners = () => atr.broker.eventNames().reduce((n, e) => n + atr.broker.listenerCount(e), 0);
    const atrListeners = () => atr.eventNames().reduce((n, e) => n + atr.listenerCount(e), 0);
    const start = { timers: timers(), broker: brokerListeners(), atr: atrListeners(), server: t.server.listenerCount('upgrade') };
    // One steady client, so that the channel stays subscribed and sends go on throughout.
    const steady = await connect(`${t.base}/ws/organization/7?token=alice`);
    let publishing = true;
    const publisher = (async () => {
      let i = 0;
      while (publishing) {
        await atr.publish({ scope: 'organization.7', name: 'post.updated', data: { i: i++, pad: 'p'.repeat(2000) } });
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    try {
      for (let i = 0; i < 1000; i++) {
        const org = i % 3 === 0 ? '8' : '7';
        const token = org === '8' ? 'bob' : 'alice';
        switch (i % 5) {
          case 0: {  // leaves before the handshake finishes (often during the authenticator)
            const ws = new WebSocket(`${t.base}/ws/organization/${org}?token=${token}`);
            ws.on('error', () => undefined);
            await sleep(Math.random() * 3);
            ws.terminate();
            break;
          }
          case 1: {  // leaves right after the 101, while its channel is being subscribed
            const ws = new WebSocket(`${t.base}/ws/organization/${org}?token=${token}`);
            ws.on('error', () => undefined);
            await new Promise((resolve) => { ws.once('open', resolve); ws.once('close', resolve); });
            ws.terminate();
            break;
          }
          case 2: {  // ready, receives events, closes cleanly
            const c = await connect(`${t.base}/ws/organization/${org}?token=${token}`);
            await sleep(Math.random() * 2);
            await c.close();
            break;
          }
          case 3: {  // ready, then vanishes while events are being written to it
            const c = await connect(`${t.base}/ws/organization/${org}?token=${token}`);
            c.ws.terminate();
            break;
          }
          default: {  // refused
            const res = await rawUpgrade(t.port, `/ws/organization/${org}`);
            assert.equal(res.status, 401);
          }
        }
      }
      publishing = false;
      await publisher;
      await eventually(() => t.router.hub.size === 1 && t.router.hub.metrics.handshakesPending === 0, 5000, 'only the steady client');
      await sleep(50);
      assert.deepEqual(atr.broker.subscriptions(), ['atr:{organization.7}']);
      assert.deepEqual(t.router.hub.channelNames(), ['atr:{organization.7}']);
      await steady.close();
      await eventually(() => t.router.hub.size === 0 && atr.broker.subscriptions().length === 0, 3000, 'nothing left');
      assert.equal(t.router.hub.metrics.connections, 0);
      assert.equal(t.router.hub.metrics.channels, 0);
      await eventually(() => timers() <= start.timers, 3000, 'timers back');
      await eventually(async () => (await openSockets(t)) === 0, 3000, 'no open socket');
      assert.equal(brokerListeners(), start.broker);
      assert.equal(atrListeners(), start.atr);
      assert.equal(t.server.listenerCount('upgrade'), start.server);
      assert.deepEqual(warnings.filter((w) => w.name === 'MaxListenersExceededWarning'), []);
      console.log(`1,000 cycles: ${JSON.stringify(t.router.hub.metrics)}`);
    } finally {
      publishing = false;
      await publisher;
      await t.close();
      await atr.close();
    }
  });
});
