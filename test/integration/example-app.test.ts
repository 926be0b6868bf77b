/**
 * The example app's contract (DESIGN.md), on SQLite and the memory broker:
 * the JSON API, and who may open which websocket.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createExampleApp } from '../../example-app/app';
import type { ExampleApp } from '../../example-app/app';
import { hashPassword, verifyPassword } from '../../example-app/auth/password';
import { issueToken, verifyToken } from '../../example-app/auth/token';
import { AtrClient } from '../../src/client/index';
import { getHub } from '../../src/index';
import type { CloseInfo, NodeAtrClientOptions } from '../../src/client/index';
import { silentLogger } from '../../src/logger';

interface Session { token: string; user: Record<string, unknown> & { id: number; organization_id: number }; organization: { id: number; name: string } }

describe('example app API and websocket', () => {
  let dir: string;
  let app: ExampleApp;
  let alice: Session;
  let carol: Session;
  const clients: AtrClient[] = [];

  async function call(method: string, url: string, body?: unknown, token?: string): Promise<{ status: number; json: any }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(app.url + url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  }

  async function signIn(email: string): Promise<Session> {
    const { status, json } = await call('POST', '/api/session', { email, password: 'password' });
    assert.equal(status, 200);
    return json;
  }

  function connect(orgId: number | string, options: Partial<NodeAtrClientOptions> & { token?: string } = {}): AtrClient {
    const query = options.token === undefined ? '' : `?token=${encodeURIComponent(options.token)}`;
    const client = new AtrClient({ url: `${app.url.replace('http', 'ws')}/ws/organization/${orgId}${query}`, reconnect: { initialDelay: 10, maxDelay: 50 }, ...options });
    clients.push(client);
    return client;
  }

  const refusal = (client: AtrClient) => new Promise<CloseInfo>((resolve) => client.once('refused', resolve));
  const next = (client: AtrClient, name: string) => new Promise<any>((resolve) => client.once(name, resolve));

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'atr-example-'));
    app = await createExampleApp({ port: 0, databaseUrl: path.join(dir, 'example.sqlite3'), logger: silentLogger, secret: 'test secret' });
    alice = await signIn('alice@acme.test');
    carol = await signIn('carol@globex.test');
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs in with the seeded password and never sends the password hash', async () => {
    assert.equal(alice.user.email, 'alice@acme.test');
    assert.equal(alice.organization.name, 'Acme');
    assert.equal('password_hash' in alice.user, false);
    assert.equal(verifyToken(alice.token, 'test secret'), alice.user.id);
  });

  it('answers 401 to a wrong password and to an unknown email, alike', async () => {
    const wrong = await call('POST', '/api/session', { email: 'alice@acme.test', password: 'nope' });
    const unknown = await call('POST', '/api/session', { email: 'nobody@acme.test', password: 'password' });
    assert.deepEqual([wrong.status, wrong.json], [401, { error: 'wrong email or password' }]);
    assert.deepEqual([unknown.status, unknown.json], [401, { error: 'wrong email or password' }]);
  });

  it('answers 401 to a request with no token, a forged token or an expired one', async () => {
    const forged = `${carol.user.id}.${Math.floor(Date.now() / 1000) + 3600}.${'A'.repeat(43)}`;
    const expired = issueToken(alice.user.id, 'test secret', Date.now() - 2 * 24 * 3600 * 1000);
    for (const token of [undefined, forged, expired, alice.token.slice(0, -1) + 'x']) {
      const { status } = await call('GET', '/api/posts', undefined, token);
      assert.equal(status, 401, `token ${token}`);
    }
  });

  it('gives the user’s organization with its websocket channels', async () => {
    const { status, json } = await call('GET', '/api/organization', undefined, alice.token);
    assert.equal(status, 200);
    const id = alice.organization.id;
    assert.deepEqual(json.websocket_channels, [`organization.${id}.post.created`, `organization.${id}.post.destroyed`, `organization.${id}.post.updated`]);
    assert.equal(json.websocket_url, `/ws/organization/${id}`);
    assert.equal(json.name, 'Acme');
  });

  it('lists the posts of the user’s organization only', async () => {
    const acme = await call('GET', '/api/posts', undefined, alice.token);
    const globex = await call('GET', '/api/posts', undefined, carol.token);
    assert.deepEqual(acme.json.map((p: any) => p.title), ['Welcome to Acme']);
    assert.deepEqual(globex.json.map((p: any) => p.title), ['Welcome to Globex']);
    assert.ok(acme.json.every((p: any) => p.organization_id === alice.organization.id));
  });

  it('creates, edits and deletes a post, and refuses a bad one with 400', async () => {
    const created = await call('POST', '/api/posts', { title: ' Plan ', body: 'b' }, alice.token);
    assert.equal(created.status, 201);
    assert.equal(created.json.title, 'Plan');
    assert.equal(created.json.organization_id, alice.organization.id);
    assert.equal(created.json.author_id, alice.user.id);
    const edited = await call('PATCH', `/api/posts/${created.json.id}`, { title: 'Plan 2' }, alice.token);
    assert.deepEqual([edited.status, edited.json.title, edited.json.body], [200, 'Plan 2', 'b']);
    const deleted = await call('DELETE', `/api/posts/${created.json.id}`, undefined, alice.token);
    assert.deepEqual([deleted.status, deleted.json.id], [200, created.json.id]);
    assert.equal((await call('DELETE', `/api/posts/${created.json.id}`, undefined, alice.token)).status, 404);
    assert.deepEqual(await call('POST', '/api/posts', { title: '', body: 'b' }, alice.token), { status: 400, json: { error: 'title must be text of 1 to 200 characters' } });
    assert.equal((await call('PATCH', `/api/posts/${created.json.id}`, {}, alice.token)).status, 400);
  });

  it('answers 404 to an edit or delete of another organization’s post, and leaves it alone', async () => {
    const [globexPost] = (await call('GET', '/api/posts', undefined, carol.token)).json;
    assert.deepEqual(await call('PATCH', `/api/posts/${globexPost.id}`, { title: 'mine now' }, alice.token), { status: 404, json: { error: 'no such post' } });
    assert.deepEqual(await call('DELETE', `/api/posts/${globexPost.id}`, undefined, alice.token), { status: 404, json: { error: 'no such post' } });
    const after = (await call('GET', '/api/posts', undefined, carol.token)).json;
    assert.deepEqual(after, [globexPost]);
  });

  it('streams the organization’s changes to its members, with the actor, and nothing of other organizations', async () => {
    const acme = connect(alice.organization.id, { token: alice.token });
    const globex = connect(carol.organization.id, { token: carol.token });
    const ready = await next(acme, 'atr.ready');
    await next(globex, 'atr.ready');
    assert.deepEqual(ready.scopes, [`organization.${alice.organization.id}`]);
    const globexEvents: unknown[] = [];
    globex.on('*', (e) => globexEvents.push(e));
    const events: any[] = [];
    acme.on('*', (e) => events.push(e));
    const created = (await call('POST', '/api/posts', { title: 'Live', body: '' }, alice.token)).json;
    await call('PATCH', `/api/posts/${created.id}`, { body: 'edited' }, alice.token);
    await call('DELETE', `/api/posts/${created.id}`, undefined, alice.token);
    while (events.length < 3) await next(acme, '*');
    assert.deepEqual(events.map((e) => [e.name, e.record.id, e.actor]), [
      ['post.created', created.id, { id: alice.user.id, name: 'Alice' }],
      ['post.updated', created.id, { id: alice.user.id, name: 'Alice' }],
      ['post.destroyed', created.id, { id: alice.user.id, name: 'Alice' }],
    ]);
    assert.equal(events[1].record.body, 'edited');
    assert.deepEqual(events[1].changes, ['body', 'updated_at']);
    assert.deepEqual(globexEvents, []);
  });

  it('C11: refuses a websocket without a token, or with a bad one, with 401 and opens nothing', async () => {
    const hub = getHub(app.atr);
    const before = { ...hub.metrics };
    for (const token of [undefined, 'garbage', alice.token.slice(0, -2) + 'xx']) {
      const info = await refusal(connect(alice.organization.id, { token }));
      assert.equal(info.status, 401, `token ${token}`);
      assert.equal(info.wasOpen, false);
    }
    assert.equal(hub.metrics.connections, before.connections);
    assert.equal(hub.metrics.refused, before.refused + 3);
  });

  it('answers the client’s pings with atr.pong, so a quiet but healthy connection stays', async () => {
    const client = connect(alice.organization.id, { token: alice.token, pingInterval: 30, pongTimeout: 200 });
    let pongs = 0;
    client.on('atr.pong', () => pongs++);
    const closes: unknown[] = [];
    client.on('close', (info) => closes.push(info));
    await next(client, 'atr.ready');
    while (pongs < 4) await next(client, 'atr.pong');
    assert.deepEqual(closes, []);
    assert.equal(client.state, 'open');
  });

  it('accepts the token in an Authorization header too', async () => {
    const client = connect(alice.organization.id, { headers: { authorization: `Bearer ${alice.token}` } });
    assert.deepEqual((await next(client, 'atr.ready')).scopes, [`organization.${alice.organization.id}`]);
  });

  it('C3: refuses the websocket of another organization, or a made-up path, with 403 and subscribes nothing', async () => {
    const hub = getHub(app.atr);
    const before = { ...hub.metrics };
    const channels = app.atr.broker.subscriptions().length;
    assert.equal((await refusal(connect(alice.organization.id, { token: carol.token }))).status, 403);
    assert.equal((await refusal(connect('1.2', { token: alice.token }))).status, 403);
    assert.equal((await refusal(connect('1*', { token: alice.token }))).status, 403);
    assert.equal(hub.metrics.connections, before.connections);
    assert.equal(app.atr.broker.subscriptions().length, channels);
  });

  it('C10: refuses a websocket from a foreign origin with 403 and accepts the app’s own', async () => {
    const foreign = connect(alice.organization.id, { token: alice.token, headers: { origin: 'https://evil.example' } });
    assert.equal((await refusal(foreign)).status, 403);
    const own = connect(alice.organization.id, { token: alice.token, headers: { origin: app.url } });
    await next(own, 'atr.ready');
  });

  it('hashes passwords with a salt and checks them', async () => {
    const a = await hashPassword('secret');
    const b = await hashPassword('secret');
    assert.notEqual(a, b);
    assert.match(a, /^scrypt\$16384\$8\$1\$/);
    assert.equal(await verifyPassword('secret', a), true);
    assert.equal(await verifyPassword('Secret', a), false);
  });
});
