/**
 * Helpers for the websocket server tests: an Express app (4 or 5) with
 * express-ws and the atr router on port 0, real `ws` clients, and raw
 * upgrade requests to see the HTTP status of a refusal.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import expressWs from 'express-ws';
import type { Atr } from '../../src/atr';
import { createAtr } from '../../src/atr';
import type { AtrOptions } from '../../src/config';
import { silentLogger } from '../../src/logger';
import type { MessageListener } from '../../src/brokers/broker';
import { MemoryBroker } from '../../src/brokers/memory';
import { RequestAuthenticator } from '../../src/server/request-authenticator';
import { RequestScope } from '../../src/server/request-scope';
import { atrRouter } from '../../src/server/router';
import type { AtrRouter } from '../../src/server/router';

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const express4 = require('express4') as typeof import('express');
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const express5 = require('express5') as typeof import('express');

/** token → organization id of its user. */
export const TOKENS: Record<string, string> = { alice: '7', bob: '8', carol: '70', dave: '77' };

/** Accepts `?token=` or a `token` cookie naming a known user. */
export class TokenAuthenticator extends RequestAuthenticator {
  override matches(): boolean | Promise<boolean> {
    const token = this.params.token ?? this.cookies.token;
    if (token === undefined || !(token in TOKENS)) return false;
    this.user = { token, organization: TOKENS[token] };
    return true;
  }
}

/** `/organization/:id`, allowed for members only; the id is encoded with scopeKey. */
export class OrganizationScope extends RequestScope {
  override routingKey(): string {
    return this.scopeKey('organization', this.segments[1] ?? '');
  }

  override valid(): boolean | Promise<boolean> {
    return this.segments.length === 2 && this.segments[0] === 'organization' && this.user?.organization === this.segments[1];
  }
}

/** An Atr with the test authenticator and scope, a silent logger, and the errors it reported. */
export function makeAtr(options: AtrOptions = {}) {
  const errors: Error[] = [];
  const atr = createAtr({
    authenticateWith: TokenAuthenticator,
    scopeWith: OrganizationScope,
    logger: silentLogger,
    onError: (err) => errors.push(err),
    ...options,
  });
  return { atr, errors };
}

export interface TestApp {
  app: any;
  server: http.Server;
  router: AtrRouter;
  port: number;
  base: string;
  close(): Promise<void>;
}

export interface StartOptions {
  express?: typeof import('express');
  mount?: string;
  /** Called after expressWs(app), before the router is mounted. */
  before?: (app: any) => void;
  /** Called after the router is mounted. */
  after?: (app: any) => void;
}

/** `const app = express(); expressWs(app); app.use(mount, atrRouter(atr)); app.listen(0)`. */
export async function startApp(atr: Atr, options: StartOptions = {}): Promise<TestApp> {
  const express = options.express ?? express5;
  const app = express();
  expressWs(app as any);
  options.before?.(app);
  const router = atrRouter(atr);
  app.use(options.mount ?? '/ws', router as any);
  options.after?.(app);
  const server: http.Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return finish(server, router);
}

export function finish(server: http.Server, router: AtrRouter): TestApp {
  const port = (server.address() as AddressInfo).port;
  return {
    app: undefined,
    server,
    router,
    port,
    base: `ws://127.0.0.1:${port}`,
    async close() {
      await router.close();
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface Client {
  ws: WebSocket;
  /** Every text message received, parsed. */
  messages: any[];
  /** The messages whose name does not start with `atr.`. */
  events(): any[];
  /** Resolves with the next message that satisfies `test`. */
  waitFor(test: (m: any) => boolean, ms?: number): Promise<any>;
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

/** Opens a ws client and resolves once `atr.ready` arrived (or rejects with the close code / status). */
export function connect(url: string, options: { headers?: Record<string, string>; ready?: boolean; rejectUnauthorized?: boolean; autoPong?: boolean } = {}): Promise<Client> {
  const ws = new WebSocket(url, { headers: options.headers, rejectUnauthorized: options.rejectUnauthorized, autoPong: options.autoPong ?? true });
  const messages: any[] = [];
  const watchers = new Set<{ test: (m: any) => boolean; resolve: (m: any) => void; reject: (err: Error) => void }>();
  ws.on('message', (data) => {
    let m: any;
    try {
      m = JSON.parse(data.toString());
    } catch {
      m = { raw: data.toString() };
    }
    messages.push(m);
    for (const w of [...watchers]) {
      if (w.test(m)) {
        watchers.delete(w);
        w.resolve(m);
      }
    }
  });
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const w of [...watchers]) w.reject(new Error(`closed ${code} while waiting for a message`));
      watchers.clear();
    });
  });
  const client: Client = {
    ws,
    messages,
    events: () => messages.filter((m) => typeof m.name === 'string' && !m.name.startsWith('atr.')),
    waitFor(test, ms = 5000) {
      const found = messages.find(test);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          watchers.delete(w);
          reject(new Error(`no matching message within ${ms} ms; got ${JSON.stringify(messages).slice(0, 300)}`));
        }, ms);
        const w = {
          test,
          resolve: (m: any) => { clearTimeout(timer); resolve(m); },
          reject: (err: Error) => { clearTimeout(timer); reject(err); },
        };
        watchers.add(w);
      });
    },
    closed,
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close();
      const t = setTimeout(() => ws.terminate(), 1000);
      await closed;
      clearTimeout(t);
    },
  };
  if (options.ready === false) {
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }));
      ws.terminate();
    });
    closed.then(({ code }) => reject(Object.assign(new Error(`closed ${code}`), { code })));
    client.waitFor((m) => m.name === 'atr.ready').then(() => resolve(client), reject);
  });
}

export interface RawResult {
  status: number;
  /** true when the server answered 101. */
  upgraded: boolean;
  body: string;
}

/** A raw upgrade request: the status the server answers, and whether it switched protocols. */
export function rawUpgrade(port: number, path: string, headers: Record<string, string> = {}): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version': '13',
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, upgraded: true, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, upgraded: false, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A memory broker whose subscribe and unsubscribe take a while, as over a network. */
export class SlowBroker extends MemoryBroker {
  subscribeCalls = 0;
  unsubscribeCalls = 0;
  constructor(private readonly delay: () => number = () => Math.random() * 20) {
    super();
  }

  override async subscribe(channel: string, listener: MessageListener): Promise<void> {
    this.subscribeCalls++;
    await sleep(this.delay());
    return super.subscribe(channel, listener);
  }

  override async unsubscribe(channel: string): Promise<void> {
    this.unsubscribeCalls++;
    await sleep(this.delay());
    return super.unsubscribe(channel);
  }
}

/** Resolves when `check()` holds, polling every 10 ms; rejects after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 3000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
