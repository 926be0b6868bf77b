/**
 * The example app in a real browser: Alice and Bob of Acme and Carol of
 * Globex, each in their own browser context. Bob's changes show on Alice's
 * page live, never on Carol's; Carol cannot open Acme's websocket.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { createExampleApp } from '../../example-app/app';
import type { ExampleApp } from '../../example-app/app';
import { openDatabase } from '../../example-app/database';
import { AtrClient } from '../../src/client/index';
import type { CloseInfo } from '../../src/client/index';
import { silentLogger } from '../../src/logger';
import { getHub } from '../../src/index';

const SECRET = 'e2e secret';
const CHROMIUM = process.env.ATR_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('example app in the browser', () => {
  let dir: string;
  let app: ExampleApp;
  let browser: Browser;
  const pages: Record<string, Page> = {};

  /** `slowSocketMs`: the page's websocket handshakes reach the server only this much later (a slow network). */
  async function signIn(email: string, slowSocketMs = 0): Promise<Page> {
    const context = await browser.newContext();
    if (slowSocketMs > 0) {
      await context.routeWebSocket(/\/ws\//, async (ws) => {
        await new Promise((resolve) => setTimeout(resolve, slowSocketMs));
        ws.connectToServer();
      });
    }
    const page = await context.newPage();
    page.on('pageerror', (err) => assert.fail(`${email}'s page threw: ${err.message}`));
    await page.goto(app.url);
    await page.fill('#sign-in-form [name=email]', email);
    await page.fill('#sign-in-form [name=password]', 'password');
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForSelector('#status[data-state=live]');
    await page.waitForSelector('#posts li');
    // Marks this document: if the page reloaded, the mark would be gone.
    await page.evaluate(() => ((window as unknown as { noReload: boolean }).noReload = true));
    return page;
  }

  const titles = (page: Page) => page.$$eval('#posts li:not([hidden]) .title', (els) => els.map((e) => e.textContent));
  const toasts = (page: Page) => page.$$eval('#toasts .toast', (els) => els.map((e) => e.textContent));
  const eventsSeen = (page: Page) => page.evaluate(() => Number(document.documentElement.dataset.eventsSeen ?? 0));
  const notReloaded = (page: Page) => page.evaluate(() => (window as unknown as { noReload?: boolean }).noReload === true);

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is not at ${CHROMIUM}: install Debian's (apt-get install -y chromium; .ci/run does) or set ATR_CHROMIUM to its path`);
    }
    dir = mkdtempSync(path.join(os.tmpdir(), 'atr-e2e-'));
    app = await createExampleApp({ port: 0, databaseUrl: path.join(dir, 'example.sqlite3'), logger: silentLogger, secret: SECRET });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    pages.alice = await signIn('alice@acme.test');
    pages.bob = await signIn('bob@acme.test');
    pages.carol = await signIn('carol@globex.test');
  });

  after(async () => {
    await browser?.close();
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows Bob’s new post on Alice’s page live, with a notice, and no notice to Bob', async () => {
    const { alice, bob } = pages;
    await bob.fill('#new-post [name=title]', 'Quarterly plan');
    await bob.fill('#new-post [name=body]', 'Draft for review');
    await bob.click('#new-post button[type=submit]');
    await alice.waitForFunction(() => Array.from(document.querySelectorAll('#posts .title')).some((e) => e.textContent === 'Quarterly plan'));
    await alice.waitForSelector('#toasts .toast[data-action=created]');
    assert.deepEqual(await toasts(alice), ['Bob posted “Quarterly plan”']);
    assert.deepEqual(await titles(alice), ['Quarterly plan', 'Welcome to Acme']);
    // Bob got his own event too, and it made no notice.
    await bob.waitForFunction(() => document.documentElement.dataset.eventsSeen === '1');
    assert.deepEqual(await toasts(bob), []);
    assert.ok(await notReloaded(alice));
  });

  it('shows Bob’s edit on Alice’s page live', async () => {
    const { alice, bob } = pages;
    const li = bob.locator('#posts li', { hasText: 'Quarterly plan' });
    await li.locator('.edit').click();
    await li.locator('.editor [name=title]').fill('Quarterly plan v2');
    await li.locator('.editor button[type=submit]').click();
    await alice.waitForFunction(() => Array.from(document.querySelectorAll('#posts .title')).some((e) => e.textContent === 'Quarterly plan v2'));
    await alice.waitForSelector('#toasts .toast[data-action=updated]');
    assert.deepEqual(await titles(alice), ['Quarterly plan v2', 'Welcome to Acme']);
    assert.ok((await toasts(alice)).includes('Bob edited “Quarterly plan v2”'));
    await bob.waitForFunction(() => document.documentElement.dataset.eventsSeen === '2');
    assert.deepEqual(await toasts(bob), []);
    assert.ok(await notReloaded(alice));
  });

  it('removes Bob’s deleted post from Alice’s page live', async () => {
    const { alice, bob } = pages;
    await bob.locator('#posts li', { hasText: 'Quarterly plan v2' }).locator('.delete').click();
    await alice.waitForSelector('#toasts .toast[data-action=destroyed]');
    await alice.waitForFunction(() => document.querySelectorAll('#posts li').length === 1);
    assert.deepEqual(await titles(alice), ['Welcome to Acme']);
    assert.ok((await toasts(alice)).includes('Bob deleted “Quarterly plan v2”'));
    assert.equal(await eventsSeen(alice), 3);
    assert.ok(await notReloaded(alice));
  });

  it('shows Carol of Globex none of it', async () => {
    const { carol } = pages;
    assert.equal(await eventsSeen(carol), 0);
    assert.deepEqual(await toasts(carol), []);
    assert.deepEqual(await titles(carol), ['Welcome to Globex']);
    assert.equal(await carol.getAttribute('#status', 'data-state'), 'live');
  });

  it('refuses Carol’s request for Acme’s websocket, in the browser and with HTTP 403', async () => {
    const { carol } = pages;
    const session = JSON.parse((await carol.evaluate(() => sessionStorage.getItem('atr-example-session')))!);
    const acme = (await pages.alice.evaluate(() => JSON.parse(sessionStorage.getItem('atr-example-session')!).organization.id)) as number;
    const wsUrl = `${app.url.replace('http', 'ws')}/ws/organization/${acme}?token=${encodeURIComponent(session.token)}`;
    const inBrowser = await carol.evaluate((url) => new Promise<{ opened: boolean; code: number }>((resolve) => {
      const ws = new WebSocket(url);
      let opened = false;
      ws.onopen = () => (opened = true);
      ws.onclose = (e) => resolve({ opened, code: e.code });
    }), wsUrl);
    assert.deepEqual(inBrowser, { opened: false, code: 1006 });

    const client = new AtrClient({ url: wsUrl, headers: { origin: app.url } });
    const info = await new Promise<CloseInfo>((resolve) => client.once('refused', resolve));
    await client.close();
    assert.equal(info.status, 403);
    assert.equal(await eventsSeen(carol), 0);
  });

  it('retries a refused handshake in the browser with growing delays, and stops when shouldReconnect says no', async () => {
    const { carol } = pages;
    const session = JSON.parse((await carol.evaluate(() => sessionStorage.getItem('atr-example-session')))!);
    const acme = (await pages.alice.evaluate(() => JSON.parse(sessionStorage.getItem('atr-example-session')!).organization.id)) as number;
    const url = `${app.url.replace('http', 'ws')}/ws/organization/${acme}?token=${encodeURIComponent(session.token)}`;
    // Plain JavaScript text: what tsx compiles would carry its helpers into the page.
    const result = await carol.evaluate(`new Promise((resolve) => {
      const asked = [];
      const delays = [];
      const client = new AtrClient({
        url: ${JSON.stringify(url)},
        reconnect: { initialDelay: 50, jitter: 0 },
        shouldReconnect: (info) => {
          asked.push([info.code, info.wasOpen, info.failures]);
          return asked.length < 3;
        },
      });
      client.on('reconnecting', (r) => delays.push(r.delay));
      const timer = setInterval(() => {
        if (client.state === 'closed') {
          clearInterval(timer);
          resolve({ delays, asked, state: client.state });
        }
      }, 10);
    })`);
    assert.deepEqual(result, { delays: [50, 100], asked: [[1006, false, 1], [1006, false, 2], [1006, false, 3]], state: 'closed' });
  });

  it('moves a post between organizations live: it leaves Carol’s page and arrives on Alice’s as an update of an unknown id', async () => {
    const { alice, carol } = pages;
    const { Post } = app.models;
    const post = await Post.query().findOne({ title: 'Welcome to Globex' });
    const acme = await Post.query().findOne({ title: 'Welcome to Acme' });
    await Post.query().patch({ organization_id: acme!.organization_id, updated_at: new Date().toISOString() }).where('id', post!.id);
    await alice.waitForFunction(() => Array.from(document.querySelectorAll('#posts .title')).some((e) => e.textContent === 'Welcome to Globex'));
    await carol.waitForFunction(() => document.querySelectorAll('#posts li').length === 0);
    assert.deepEqual(await titles(alice), ['Welcome to Globex', 'Welcome to Acme']);
    assert.ok((await toasts(alice)).includes('Someone edited “Welcome to Globex”'));
    assert.ok((await toasts(carol)).includes('Someone deleted “Welcome to Globex”'));
    assert.ok(await notReloaded(alice));
    assert.ok(await notReloaded(carol));
  });

  it('signs a page out when the server no longer accepts its token, instead of retrying for ever', async () => {
    const context = await browser.newContext();
    const stale = { token: '1.9999999999.' + 'A'.repeat(43), user: { id: 1, name: 'Alice', email: 'alice@acme.test' }, organization: { id: 1, name: 'Acme' } };
    await context.addInitScript((value) => sessionStorage.setItem('atr-example-session', value), JSON.stringify(stale));
    const page = await context.newPage();
    await page.goto(app.url);
    await page.waitForFunction(() => document.querySelector('#sign-in-error')!.textContent !== '');
    assert.equal(await page.textContent('#sign-in-error'), 'Your session has expired; sign in again.');
    assert.equal(await page.isVisible('#sign-in'), true);
    assert.equal(await page.isVisible('#board'), false);
    await context.close();
  });

  it('resumes after Alice’s connection drops: Bob’s three changes made meanwhile show without a reload', async () => {
    const { alice, bob } = pages;
    const hub = getHub(app.atr);
    const replayedBefore = hub.metrics.replayed;
    const seenBefore = await eventsSeen(alice);
    const aliceId = (await alice.evaluate(() => JSON.parse(sessionStorage.getItem('atr-example-session')!).user.id)) as number;
    const bobToken = (await bob.evaluate(() => JSON.parse(sessionStorage.getItem('atr-example-session')!).token)) as string;
    // Alice's network goes away: no new connection can open, and the server drops hers.
    await alice.context().setOffline(true);
    const reactors = [...((hub as unknown as { reactors: Set<{ user: { id?: number } | undefined; socket: { terminate(): void } }> }).reactors)];
    const hers = reactors.filter((r) => r.user?.id === aliceId);
    assert.ok(hers.length >= 1, 'Alice has a live connection to drop');
    for (const r of hers) r.socket.terminate();
    await alice.waitForSelector('#status[data-state=reconnecting]');

    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${app.url}/api${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${bobToken}` }, body: body === undefined ? undefined : JSON.stringify(body) });
      assert.ok(res.ok, `${method} ${path}: ${res.status}`);
      return res.json() as Promise<{ id: number }>;
    };
    const created = await api('POST', '/posts', { title: 'Made while Alice was away', body: '' });
    await api('PATCH', `/posts/${created.id}`, { title: 'Edited while Alice was away' });
    const second = await api('POST', '/posts', { title: 'Second while away', body: '' });
    assert.ok(second.id > created.id);
    assert.equal(await eventsSeen(alice), seenBefore, 'Alice saw nothing while offline');

    await alice.context().setOffline(false);
    await alice.waitForFunction(() => Array.from(document.querySelectorAll('#posts .title')).some((e) => e.textContent === 'Second while away'), undefined, { timeout: 20_000 });
    await alice.waitForFunction(() => Array.from(document.querySelectorAll('#posts .title')).some((e) => e.textContent === 'Edited while Alice was away'));
    assert.equal(await eventsSeen(alice), seenBefore + 3, 'the three events arrived over the socket, once each');
    assert.ok(hub.metrics.replayed - replayedBefore >= 3, 'they came from the history, replayed on reconnect');
    assert.ok(await notReloaded(alice));
  });

  it('loads a page while writes keep happening, and its final list equals the database (snapshot then subscribe)', async () => {
    const { Post, User } = app.models;
    const bobUser = await User.query().findOne({ email: 'bob@acme.test' });
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      const mine: number[] = [];
      while (writing) {
        const r = writes++ % 3;
        if (r === 0 || mine.length === 0) {
          const post = await Post.query().insert({ organization_id: bobUser!.organization_id, author_id: bobUser!.id, title: `race ${writes}`, body: '', created_at: new Date().toISOString(), updated_at: new Date().toISOString() } as never);
          mine.push(post.id);
        } else if (r === 1) {
          await Post.query().patch({ title: `race ${writes} (edited)` } as never).where('id', mine[mine.length - 1]!);
        } else {
          await Post.query().deleteById(mine.shift()!);
        }
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
    })();
    try {
      for (let round = 0; round < 3; round++) {
        // The socket opens 200 ms after the list was fetched: writes in between must not be lost.
        const page = await signIn('bob@acme.test', 200);
        await new Promise((resolve) => setTimeout(resolve, 300));
        await page.context().close();
      }
      const last = await signIn('bob@acme.test', 200);
      await new Promise((resolve) => setTimeout(resolve, 300));
      writing = false;
      await writer;
      const inDatabase = async () => (await Post.query().where('organization_id', bobUser!.organization_id).orderBy('id', 'desc')).map((p) => `${p.id}:${p.title}`);
      const onPage = () => last.$$eval('#posts li', (els) => els.map((e) => `${(e as HTMLElement).dataset.id}:${e.querySelector('.title')!.textContent}`));
      const expected = await inDatabase();
      await last.waitForFunction((want) => Array.from(document.querySelectorAll('#posts li')).map((e) => `${(e as HTMLElement).dataset.id}:${e.querySelector('.title')!.textContent}`).join('|') === want, expected.join('|'), { timeout: 10_000 }).catch(() => undefined);
      assert.deepEqual(await onPage(), expected);
      assert.ok(writes > 50, `writes happened throughout (${writes})`);
      await last.context().close();
    } finally {
      writing = false;
      await writer;
    }
  });

  it('reconnects after the server restarts and shows what happened while it was down', async () => {
    const { alice } = pages;
    const port = Number(new URL(app.url).port);
    const databaseUrl = path.join(dir, 'example.sqlite3');
    await app.close();
    await alice.waitForSelector('#status[data-state=reconnecting]');
    // Written while no server runs, straight to the database: no event will ever tell the page.
    const db = await openDatabase({ url: databaseUrl });
    const now = new Date().toISOString();
    await db('posts').insert({ organization_id: 1, author_id: 2, title: 'Written during the outage', body: '', created_at: now, updated_at: now });
    await db.destroy();
    app = await createExampleApp({ port, databaseUrl, logger: silentLogger, secret: SECRET });
    await alice.waitForSelector('#status[data-state=live]', { timeout: 20_000 });
    await alice.waitForFunction(() => Array.from(document.querySelectorAll('#posts .title')).some((e) => e.textContent === 'Written during the outage'));
    assert.ok(await notReloaded(alice));
  });
});
