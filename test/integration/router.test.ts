import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import expressWs from 'express-ws';
import { RequestAuthenticator } from '../../src/server/request-authenticator';
import { RequestScope } from '../../src/server/request-scope';
import { atrRouter } from '../../src/server/router';
import {
  OrganizationScope, TokenAuthenticator, connect, eventually, express4, express5, finish, rawUpgrade, sleep, startApp,
} from '../helpers/connections';
import { makeAtr } from '../helpers/connections';

for (const [label, express] of [['Express 4', express4], ['Express 5', express5]] as const) {
  describe(`atrRouter on ${label}`, () => {
    it(`${label === 'Express 5' ? 'C7: works on Express 5 as on Express 4' : 'works on Express 4'}: an authorized client gets the events of its scope`, async () => {
      const { atr } = makeAtr();
      const t = await startApp(atr, { express });
      try {
        const a = await connect(`${t.base}/ws/organization/7?token=alice`);
        assert.deepEqual(a.messages[0], { name: 'atr.ready', scopes: ['organization.7'] });
        await atr.publish({ scope: 'organization.7', name: 'post.created', data: { id: 1 } });
        const event = await a.waitFor((m) => m.name === 'post.created');
        assert.deepEqual(event.data, { id: 1 });
        await a.close();
      } finally {
        await t.close();
        await atr.close();
      }
    });

    it('C11: refuses an upgrade with no credentials with HTTP 401, no 101 and no subscription', async () => {
      const { atr } = makeAtr();
      const t = await startApp(atr, { express });
      try {
        const res = await rawUpgrade(t.port, '/ws/organization/7');
        assert.equal(res.status, 401);
        assert.equal(res.upgraded, false);
        assert.deepEqual(atr.broker.subscriptions(), []);
        assert.equal(t.router.hub.metrics.connections, 0);
        assert.equal(t.router.hub.metrics.refused, 1);
      } finally {
        await t.close();
        await atr.close();
      }
    });

    it("C3: refuses alice's request for another organization with HTTP 403 before the upgrade", async () => {
      const { atr } = makeAtr();
      const t = await startApp(atr, { express });
      try {
        const res = await rawUpgrade(t.port, '/ws/organization/8?token=alice');
        assert.equal(res.status, 403);
        assert.equal(res.upgraded, false);
        assert.deepEqual(atr.broker.subscriptions(), []);
      } finally {
        await t.close();
        await atr.close();
      }
    });

    it('C6: a catch-all GET route still gets plain GETs to the mount path while the upgrade reaches atr', async () => {
      const { atr } = makeAtr();
      const t = await startApp(atr, {
        express,
        // The catch-all comes before the router: the hardest order.
        before: (app) => app.get(label === 'Express 5' ? '/{*splat}' : '*', (_req: any, res: any) => res.send('catch-all')),
      });
      try {
        const body = await new Promise<string>((resolve, reject) => {
          http.get(`http://127.0.0.1:${t.port}/ws/organization/7?token=alice`, (res) => {
            let text = '';
            res.on('data', (d) => { text += d; });
            res.on('end', () => resolve(text));
          }).on('error', reject);
        });
        assert.equal(body, 'catch-all');
        const a = await connect(`${t.base}/ws/organization/7?token=alice`);
        assert.equal(a.messages[0].name, 'atr.ready');
        await a.close();
      } finally {
        await t.close();
        await atr.close();
      }
    });

    it('leaves upgrades outside its mount path to express-ws routes', async () => {
      const { atr } = makeAtr();
      const t = await startApp(atr, {
        express,
        before: (app) => app.ws('/echo', (ws: any) => ws.on('message', (m: any) => ws.send(String(m)))),
      });
      try {
        const { WebSocket } = await import('ws');
        const echo = new WebSocket(`${t.base}/echo`);
        await new Promise((resolve) => echo.once('open', resolve));
        echo.send('hello');
        const [reply] = await new Promise<any[]>((resolve) => echo.once('message', (...args) => resolve(args)));
        assert.equal(String(reply), 'hello');
        echo.close();
        await new Promise((resolve) => echo.once('close', resolve));
      } finally {
        await t.close();
        await atr.close();
      }
    });
  });
}

describe('atrRouter', () => {
  it('C10: refuses a cookie-authenticated upgrade from a foreign origin with HTTP 403 and lets the allowed origin in', async () => {
    const { atr } = makeAtr({ allowedOrigins: ['https://app.example'] });
    const t = await startApp(atr);
    try {
      const evil = await rawUpgrade(t.port, '/ws/organization/7', { Cookie: 'token=alice', Origin: 'https://evil.example' });
      assert.equal(evil.status, 403);
      assert.equal(evil.upgraded, false);
      const good = await rawUpgrade(t.port, '/ws/organization/7', { Cookie: 'token=alice', Origin: 'https://app.example' });
      assert.equal(good.status, 101);
      const noOrigin = await rawUpgrade(t.port, '/ws/organization/7', { Cookie: 'token=alice' });
      assert.equal(noOrigin.status, 101);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('C8: a throwing authenticator refuses that request with HTTP 500, reports the error, and the others go on', async () => {
    class Throwing extends TokenAuthenticator {
      override matches(): boolean | Promise<boolean> {
        if (this.params.boom) throw new Error('database down');
        return super.matches();
      }
    }
    const { atr, errors } = makeAtr({ authenticateWith: Throwing });
    const t = await startApp(atr);
    try {
      const a = await connect(`${t.base}/ws/organization/7?token=alice`);
      const res = await rawUpgrade(t.port, '/ws/organization/7?token=alice&boom=1');
      assert.equal(res.status, 500);
      assert.equal(res.upgraded, false);
      assert.equal(errors.length, 1);
      assert.equal((errors[0] as any).code, 'ATR_ERR_SERVER_AUTHENTICATOR');
      assert.match(errors[0]!.message, /database down/);
      await atr.publish({ scope: 'organization.7', name: 'post.created', data: { id: 2 } });
      await a.waitFor((m) => m.name === 'post.created');
      const b = await connect(`${t.base}/ws/organization/7?token=alice`);
      await b.close();
      await a.close();
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('refuses with HTTP 500 when the scope throws, async or not, and reports it', async () => {
    class ThrowingScope extends OrganizationScope {
      override async valid(): Promise<boolean> {
        await sleep(5);
        throw new Error('membership lookup failed');
      }
    }
    const { atr, errors } = makeAtr({ scopeWith: ThrowingScope });
    const t = await startApp(atr);
    try {
      const res = await rawUpgrade(t.port, '/ws/organization/7?token=alice');
      assert.equal(res.status, 500);
      assert.equal((errors[0] as any).code, 'ATR_ERR_SERVER_SCOPE');
      assert.deepEqual(atr.broker.subscriptions(), []);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('gives async authenticators and scopes the query, the decoded segments below the mount, and the user', async () => {
    const seen: any[] = [];
    class Auth extends RequestAuthenticator {
      override async matches(): Promise<boolean> {
        await sleep(5);
        seen.push({ params: { ...this.params }, segments: this.segments });
        this.user = { name: 'alice' };
        return true;
      }
    }
    class Scope extends RequestScope {
      override async routingKey(): Promise<string[]> {
        await sleep(5);
        seen.push({ user: this.user, segments: this.segments });
        return [this.scopeKey('room', this.segments[1]), this.scopeKey('user', this.user.name)];
      }
    }
    const { atr } = makeAtr({ authenticateWith: Auth, scopeWith: Scope });
    const t = await startApp(atr, { mount: '/live' });
    try {
      const a = await connect(`${t.base}/live/room/caf%C3%A9%2F1?x=1&x=2&y=%20`);
      assert.deepEqual(seen[0], { params: { x: '2', y: ' ' }, segments: ['room', 'café/1'] });
      assert.deepEqual(seen[1], { user: { name: 'alice' }, segments: ['room', 'café/1'] });
      assert.deepEqual(a.messages[0], { name: 'atr.ready', scopes: ['room.caf%C3%A9%2F1', 'user.alice'] });
      await atr.publish({ scope: 'user.alice', name: 'note.created' });
      await a.waitFor((m) => m.name === 'note.created');
      await a.close();
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('refuses a path with a malformed percent-encoding with HTTP 400', async () => {
    const { atr } = makeAtr();
    const t = await startApp(atr);
    try {
      const res = await rawUpgrade(t.port, '/ws/organization/%E0%A4%A?token=alice');
      assert.equal(res.status, 400);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('checks after the upgrade and closes with 4401/4403 when express-ws upgraded first, then refuses before the upgrade', async () => {
    const { atr } = makeAtr();
    const app = express5();
    const router = atrRouter(atr);
    app.use('/ws', router as any);
    expressWs(app as any);  // after the mount: it replaces app.listen, so atr is not attached yet
    const server: http.Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const t = finish(server, router);
    try {
      await assert.rejects(connect(`${t.base}/ws/organization/7`), { code: 4401 });
      // That request attached atr to the server: now the refusal comes before the upgrade.
      assert.equal((await rawUpgrade(t.port, '/ws/organization/7')).status, 401);
      assert.equal((await rawUpgrade(t.port, '/ws/organization/8?token=alice')).status, 403);
      const a = await connect(`${t.base}/ws/organization/7?token=alice`);
      await a.close();
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('closes an express-ws socket with 4403 for a forbidden scope and accepts an allowed one, after the upgrade', async () => {
    const { atr } = makeAtr();
    const app = express4();
    const router = atrRouter(atr);
    const server = http.createServer(app);
    expressWs(app as any, server);
    app.use('/ws', router as any);  // listen is the server's own: atr is attached by nothing yet
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const t = finish(server, router);
    try {
      await assert.rejects(connect(`${t.base}/ws/organization/8?token=alice`), { code: 4403 });
      await eventually(() => t.router.hub.metrics.refused === 1);
      assert.deepEqual(atr.broker.subscriptions(), []);
      const a = await connect(`${t.base}/ws/organization/7?token=alice`);
      assert.deepEqual(atr.broker.subscriptions(), ['atr:{organization.7}']);
      await a.close();
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('attaches to a user-created http server, with or without express-ws', async () => {
    const { atr } = makeAtr();
    const app = express5();
    const router = atrRouter(atr);
    app.use('/ws', router as any);
    const server = http.createServer(app);
    router.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const t = finish(server, router);
    try {
      assert.equal((await rawUpgrade(t.port, '/ws/organization/7')).status, 401);
      const a = await connect(`${t.base}/ws/organization/7?token=alice`);
      await a.close();
      // No other upgrade listener: an upgrade atr does not route is a 404, not a hang.
      assert.equal((await rawUpgrade(t.port, '/elsewhere')).status, 404);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('attaches to a user-created https server', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atr-tls-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    const { atr } = makeAtr();
    const app = express4();
    const router = atrRouter(atr);
    app.use('/ws', router as any);
    const server = https.createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) }, app);
    expressWs(app as any, server as any);
    router.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      await assert.rejects(connect(`wss://127.0.0.1:${port}/ws/organization/7`, { rejectUnauthorized: false }), { status: 401 });
      const a = await connect(`wss://127.0.0.1:${port}/ws/organization/7?token=alice`, { rejectUnauthorized: false });
      await atr.publish({ scope: 'organization.7', name: 'post.created' });
      await a.waitFor((m) => m.name === 'post.created');
      await a.close();
    } finally {
      await router.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await atr.close();
    }
  });

  it('refuses before the upgrade when mounted in an express.Router, once it has seen a request', async () => {
    const { atr } = makeAtr();
    const app = express5();
    expressWs(app as any);
    const api = express5.Router();
    const router = atrRouter(atr);
    api.use('/ws', router as any);
    app.use('/api', api);
    const server: http.Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const t = finish(server, router);
    try {
      await assert.rejects(connect(`${t.base}/api/ws/organization/7`), { code: 4401 });
      assert.equal((await rawUpgrade(t.port, '/api/ws/organization/7')).status, 401);
      const a = await connect(`${t.base}/api/ws/organization/7?token=alice`);
      await a.close();
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('finds its full path when mounted in a sub-app', async () => {
    const { atr } = makeAtr();
    const app = express4();
    expressWs(app as any);
    const sub = express4();
    const router = atrRouter(atr);
    sub.use('/ws', router as any);
    app.use('/v1', sub);
    const server: http.Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const t = finish(server, router);
    try {
      assert.equal((await rawUpgrade(t.port, '/v1/ws/organization/7')).status, 401);
      const a = await connect(`${t.base}/v1/ws/organization/7?token=alice`);
      await a.close();
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('refuses what is not a websocket handshake with a 4xx status and never runs the authenticator', async () => {
    let calls = 0;
    class Counting extends TokenAuthenticator {
      override matches(): boolean | Promise<boolean> {
        calls++;
        return super.matches();
      }
    }
    const { atr } = makeAtr({ authenticateWith: Counting });
    const t = await startApp(atr);
    try {
      assert.equal((await rawUpgrade(t.port, '/ws/organization/7?token=alice', { 'Sec-WebSocket-Key': 'short' })).status, 400);
      assert.equal((await rawUpgrade(t.port, '/ws/organization/7?token=alice', { 'Sec-WebSocket-Version': '7' })).status, 400);
      assert.equal(calls, 0);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('answers 503 and closes open sockets with 1001 once closed', async () => {
    const { atr } = makeAtr();
    const t = await startApp(atr);
    try {
      const a = await connect(`${t.base}/ws/organization/7?token=alice`);
      await t.router.close();
      assert.equal((await a.closed).code, 1001);
      assert.equal((await rawUpgrade(t.port, '/ws/organization/7?token=alice')).status, 503);
      assert.deepEqual(atr.broker.subscriptions(), []);
    } finally {
      await t.close();
      await atr.close();
    }
  });

  it('throws a clear error when attach() cannot know the path', () => {
    const { atr } = makeAtr();
    const router = atrRouter(atr);
    assert.throws(() => router.attach(http.createServer()), {
      code: 'ATR_ERR_CONFIG_OPTION',
      message: 'attach(server): mount the router first (app.use(path, router)) or pass the path: attach(server, "/ws")',
    });
    assert.throws(() => router.attach({} as any, '/ws'), { message: 'attach() takes an http.Server or https.Server' });
  });

  it('refuses what is not an Atr, and a second argument it would otherwise ignore', () => {
    assert.throws(() => atrRouter({} as never), { code: 'ATR_ERR_CONFIG_OPTION', message: 'atrRouter() takes an Atr (from configure() or createAtr()), or nothing for the configured one' });
    const { atr } = makeAtr();
    assert.throws(() => (atrRouter as (...args: unknown[]) => unknown)(atr, { allowedOrigins: ['https://a.example'] }), {
      code: 'ATR_ERR_CONFIG_OPTION',
      message: 'atrRouter() takes one argument, an Atr; pass options to configure() or createAtr()',
    });
  });
});
