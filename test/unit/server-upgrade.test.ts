import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { PassThrough } from 'node:stream';
import { createAtr } from '../../src/atr';
import { silentLogger } from '../../src/logger';
import { admit, closeCodeOf, originAllowed, paramsOf, resumeOf, segmentsOf } from '../../src/server/admission';
import { RequestAuthenticator } from '../../src/server/request-authenticator';
import { RequestScope } from '../../src/server/request-scope';
import { handshakeProblem, isRouted, normalizeMountPath, refuseUpgrade, routeUpgrades, splitTarget } from '../../src/server/upgrade';

function request(headers: Record<string, string> = {}, method = 'GET'): http.IncomingMessage {
  const req = new http.IncomingMessage(null as any);
  req.method = method;
  req.headers = headers;
  return req;
}

describe('upgrade routing', () => {
  it('splits request targets, origin-form and absolute-form', () => {
    assert.deepEqual(splitTarget('/ws/organization/7?token=a'), { pathname: '/ws/organization/7', query: 'token=a' });
    assert.deepEqual(splitTarget('http://host/ws?x=1'), { pathname: '/ws', query: 'x=1' });
    assert.deepEqual(splitTarget(undefined), { pathname: '/', query: '' });
    assert.equal(normalizeMountPath('/WS/'), '/ws');
    assert.equal(normalizeMountPath('/'), '');
  });

  it('takes only the upgrades under its path off the server, the longest path first, and can be undone', () => {
    const server = http.createServer();
    const seen: string[] = [];
    const others: string[] = [];
    const originalEmit = server.emit;
    server.on('upgrade', (req: http.IncomingMessage) => others.push(req.url!));
    const undoWs = routeUpgrades(server, '/ws', (_req, _socket, _head, rest, query) => seen.push(`ws:${rest}?${query}`));
    const undoDeep = routeUpgrades(server, '/ws/deep', (_req, _socket, _head, rest) => seen.push(`deep:${rest}`));
    const fire = (url: string, upgrade = 'websocket') => server.emit('upgrade', Object.assign(request({ upgrade }), { url }), new PassThrough(), Buffer.alloc(0));
    fire('/ws/organization/7?token=a');
    fire('/WS');
    fire('/ws/deep/x');
    fire('/wsx/organization/7');
    fire('/other');
    fire('/ws/h2c', 'h2c');  // not a websocket: left to the server
    assert.deepEqual(seen, ['ws:/organization/7?token=a', 'ws:?', 'deep:/x']);
    assert.deepEqual(others, ['/wsx/organization/7', '/other', '/ws/h2c']);
    assert.equal(isRouted(server, '/ws/'), true);
    undoDeep();
    undoWs();
    assert.equal(server.emit, originalEmit);
    assert.equal(server.listenerCount('upgrade'), 1);
    assert.equal(isRouted(server, '/ws'), false);
  });

  it('answers an upgrade offer that is not a websocket (h2c) as a plain request when atr is the only upgrade listener', async () => {
    const server = http.createServer((req, res) => res.end(`plain ${req.url}`));
    routeUpgrades(server, '/', () => assert.fail('not a websocket'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as import('node:net').AddressInfo).port;
      const body = await new Promise<string>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/healthz', headers: { Connection: 'Upgrade, HTTP2-Settings', Upgrade: 'h2c', 'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA' } }, (res) => {
          let text = '';
          res.on('data', (d) => { text += d; });
          res.on('end', () => resolve(`${res.statusCode} ${text}`));
        }).on('error', reject);
      });
      assert.equal(body, '200 plain /healthz');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('refuses with a real HTTP response and closes', async () => {
    const socket = new PassThrough();
    let written = '';
    socket.on('data', (d) => { written += d; });
    refuseUpgrade(socket, 401);
    await new Promise((resolve) => socket.once('close', resolve));
    assert.equal(written, 'HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\n\r\nUnauthorized');
  });

  it('tells a websocket handshake from other requests', () => {
    const ok = { upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' };
    assert.equal(handshakeProblem(request(ok)), undefined);
    assert.equal(handshakeProblem(request(ok, 'POST')), 405);
    assert.equal(handshakeProblem(request({ ...ok, upgrade: 'h2c' })), 400);
    assert.equal(handshakeProblem(request({ ...ok, 'sec-websocket-key': 'nope' })), 400);
    assert.equal(handshakeProblem(request({ ...ok, 'sec-websocket-version': '12' })), 400);
  });
});

describe('admission', () => {
  it('decodes path segments below the mount point and refuses malformed encodings', () => {
    assert.deepEqual(segmentsOf('/organization/7%2E1/'), ['organization', '7.1']);
    assert.deepEqual(segmentsOf(''), []);
    assert.deepEqual(segmentsOf('/'), []);
    assert.deepEqual(segmentsOf('/a//b'), ['a', '', 'b']);
    assert.equal(segmentsOf('/organization/%E0%A4%A'), undefined);
  });

  it('reads query parameters, the last value winning, with __proto__ as a plain key', () => {
    const params = paramsOf('a=1&a=2&__proto__=x&b=%20');
    assert.equal(params.a, '2');
    assert.equal(params.b, ' ');
    assert.equal(Object.getPrototypeOf(params), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(params, '__proto__')?.value, 'x');
  });

  it('allows listed origins, any origin without a list, and requests without an Origin', () => {
    const list = ['https://app.example'];
    assert.equal(originAllowed(request({ origin: 'https://app.example' }), list), true);
    assert.equal(originAllowed(request({ origin: 'HTTPS://APP.EXAMPLE' }), list), true);
    assert.equal(originAllowed(request({ origin: 'https://evil.example' }), list), false);
    assert.equal(originAllowed(request({ origin: 'null' }), list), false);
    assert.equal(originAllowed(request({}), list), true);
    assert.equal(originAllowed(request({ origin: 'https://evil.example' }), undefined), true);
    assert.equal(originAllowed(request({ origin: 'https://evil.example' }), ['*']), true);
  });

  it('maps refusals to close codes for use after an upgrade', () => {
    assert.deepEqual([400, 401, 403, 500, 503].map((s) => closeCodeOf(s as any)), [1008, 4401, 4403, 1011, 1001]);
  });

  it('refuses scopes that are empty, malformed or not valid, and passes the user along', async () => {
    class Auth extends RequestAuthenticator {
      override matches(): boolean {
        this.user = { id: 1 };
        return true;
      }
    }
    const make = (routingKey: () => unknown, valid = true) => class extends RequestScope {
      override routingKey(): any {
        return routingKey.call(this);
      }

      override valid(): boolean {
        return valid;
      }
    };
    const run = async (scopeWith: typeof RequestScope) => {
      const atr = createAtr({ logger: silentLogger, authenticateWith: Auth, scopeWith });
      return admit(atr, { request: request(), params: {}, segments: [] });
    };
    assert.deepEqual(await run(make(() => [])), { ok: false, status: 403, reason: 'no scope' });
    assert.deepEqual(await run(make(() => 'organization.7*')), { ok: false, status: 403, reason: 'malformed scope' });
    assert.deepEqual(await run(make(() => ['organization.7', 'organization.7.post'])), { ok: false, status: 403, reason: 'malformed scope' });
    assert.deepEqual(await run(make(() => 42)), { ok: false, status: 403, reason: 'no scope' });
    assert.deepEqual(await run(make(() => 'organization.7', false)), { ok: false, status: 403, reason: 'scope not allowed' });
    assert.deepEqual(await run(make(() => ['organization.7', 'organization.7', ''])), { ok: true, scopes: ['organization.7', ''], user: { id: 1 }, resume: { positions: new Map() } });
  });
});

describe('the default scope', () => {
  it('reads the path as name/value pairs, and gives no scope (403, not 500) for a name that cannot be one', async () => {
    class Auth extends RequestAuthenticator {
      override matches(): boolean {
        this.user = { id: 1 };
        return true;
      }
    }
    const atr = createAtr({ logger: silentLogger, authenticateWith: Auth });
    const admitPath = (segments: string[]) => admit(atr, { request: request(), params: {}, segments });
    assert.deepEqual((await admitPath(['organization', '7.x'])) as unknown, { ok: true, scopes: ['organization.7%2Ex'], user: { id: 1 }, resume: { positions: new Map() } });
    assert.deepEqual(await admitPath(['organization', '7', 'a.b', 'c']), { ok: false, status: 403, reason: 'no scope' });
    assert.deepEqual(await admitPath(['organization']), { ok: false, status: 403, reason: 'no scope' });
  });
});

describe('resume positions of an upgrade request', () => {
  it('keeps the valid positions of the connection\'s own scopes only', async () => {
    const raw = JSON.stringify({ 'organization.7': '1764780000000-000003', 'organization.8': '1-000000' });
    assert.deepEqual(resumeOf(raw, ['organization.7']), { positions: new Map([['organization.7', '1764780000000-000003']]) });
    assert.deepEqual(resumeOf(undefined, ['organization.7']), { positions: new Map() });
  });

  it('names what is wrong with a malformed value and resumes nothing of it', async () => {
    assert.equal(resumeOf('{nope', ['a.1']).problem, 'atr_resume must be JSON {"<scope>":"<event id>"}');
    assert.equal(resumeOf('[1]', ['a.1']).problem, 'atr_resume must be JSON {"<scope>":"<event id>"}');
    const bad = resumeOf(JSON.stringify({ 'a.1': 'x', 'a.2': '2-000000' }), ['a.1', 'a.2']);
    assert.equal(bad.problem, 'atr_resume holds an invalid event id for a.1');
    assert.deepEqual([...bad.positions], [['a.2', '2-000000']]);
  });
});
