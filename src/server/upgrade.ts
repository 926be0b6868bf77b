/**
 * Seeing upgrades before anybody else does. express-ws completes every
 * websocket handshake before Express routes the request, so a refusal would
 * come too late (after the 101). atr therefore takes the `upgrade` events
 * whose path lies under one of its mount points off the server itself, runs
 * its checks, and only then completes the handshake; every other upgrade goes
 * to the other listeners untouched, whatever order they were added in.
 */
import { ServerResponse, STATUS_CODES } from 'node:http';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';

export type UpgradeServer = HttpServer | HttpsServer;

/** Handles one upgrade whose path is under `path`; `rest` is the path below it, `query` what follows `?`. */
export type UpgradeHandler = (request: IncomingMessage, socket: Duplex, head: Buffer, rest: string, query: string) => void;

interface Route {
  /** The mount path, lowercased, without a trailing slash ('' for the root). */
  path: string;
  handler: UpgradeHandler;
}

interface Dispatcher {
  routes: Route[];
  originalEmit: UpgradeServer['emit'];
  wrappedEmit: UpgradeServer['emit'];
  fallback: (request: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

const kDispatcher = Symbol.for('atr.upgradeDispatcher');

type WithDispatcher = UpgradeServer & { [kDispatcher]?: Dispatcher };

/** '/ws/' → '/ws', '/' → '' : mount paths compare without the trailing slash, case-insensitively as Express does. */
export function normalizeMountPath(path: string): string {
  return path.replace(/\/+$/, '').toLowerCase();
}

/** The pathname and query of a request target (origin-form, or absolute-form from a proxy). */
export function splitTarget(url: string | undefined): { pathname: string; query: string } {
  let target = url ?? '/';
  if (!target.startsWith('/')) {
    try {
      const parsed = new URL(target);
      target = parsed.pathname + parsed.search;
    } catch {
      target = '/';
    }
  }
  const q = target.indexOf('?');
  return q < 0 ? { pathname: target, query: '' } : { pathname: target.slice(0, q), query: target.slice(q + 1) };
}

function match(routes: Route[], pathname: string): { route: Route; rest: string } | undefined {
  const lower = pathname.toLowerCase();
  // Routes are kept longest first, so a nested mount wins over its parent.
  for (const route of routes) {
    if (lower === route.path || lower.startsWith(route.path + '/')) {
      return { route, rest: pathname.slice(route.path.length) };
    }
  }
  return undefined;
}

/**
 * Routes upgrades under `path` on `server` to `handler`. Returns a function
 * that undoes it. Routing the same path twice keeps the first handler.
 */
export function routeUpgrades(server: UpgradeServer, path: string, handler: UpgradeHandler): () => void {
  const s = server as WithDispatcher;
  let dispatcher = s[kDispatcher];
  if (!dispatcher) {
    const originalEmit = server.emit;
    const d: Dispatcher = {
      routes: [],
      originalEmit,
      wrappedEmit: function emit(this: UpgradeServer, event: string | symbol, ...args: unknown[]): boolean {
        if (event === 'upgrade' && isWebsocketUpgrade(args[0] as IncomingMessage)) {
          const request = args[0] as IncomingMessage;
          const { pathname, query } = splitTarget(request.url);
          const found = match(d.routes, pathname);
          if (found) {
            try {
              found.route.handler(request, args[1] as Duplex, args[2] as Buffer, found.rest, query);
            } catch {
              refuseUpgrade(args[1] as Duplex, 500);
            }
            return true;
          }
        }
        return (originalEmit as (...a: unknown[]) => boolean).call(this, event, ...args);
      } as UpgradeServer['emit'],
      // Node emits 'upgrade' only when somebody listens; without express-ws
      // atr is the only listener. A websocket upgrade it does not route is a
      // 404; any other upgrade offer (h2c) is optional for the server, so the
      // request is answered as the plain HTTP request it also is.
      fallback: (request, socket, head) => {
        if (server.listenerCount('upgrade') !== 1) return;
        if (isWebsocketUpgrade(request)) refuseUpgrade(socket, 404);
        else serveAsPlainRequest(server, request, socket, head);
      },
    };
    server.emit = d.wrappedEmit;
    server.on('upgrade', d.fallback);
    s[kDispatcher] = d;
    dispatcher = d;
  }
  const normalized = normalizeMountPath(path);
  const existing = dispatcher.routes.find((r) => r.path === normalized);
  if (existing) return () => undefined;
  const route: Route = { path: normalized, handler };
  dispatcher.routes.push(route);
  dispatcher.routes.sort((a, b) => b.path.length - a.path.length);
  const d = dispatcher;
  return () => {
    const i = d.routes.indexOf(route);
    if (i >= 0) d.routes.splice(i, 1);
    if (d.routes.length === 0 && s[kDispatcher] === d) {
      if (server.emit === d.wrappedEmit) server.emit = d.originalEmit;
      else return;  // somebody wrapped emit after us: leave ours in place, routing nothing
      server.removeListener('upgrade', d.fallback);
      delete s[kDispatcher];
    }
  };
}

/** An `Upgrade: websocket` request (other upgrades, such as h2c, are left to the server). */
export function isWebsocketUpgrade(request: IncomingMessage): boolean {
  const upgrade = request.headers.upgrade;
  return typeof upgrade === 'string' && /(^|,)\s*websocket\s*(,|$)/i.test(upgrade);
}

/** Hands an upgrade request nobody takes to the server's request handler, on a connection that closes after it. */
function serveAsPlainRequest(server: UpgradeServer, request: IncomingMessage, socket: Duplex, head: Buffer): void {
  if (head.length > 0) socket.unshift(head);
  const response = new ServerResponse(request);
  response.shouldKeepAlive = false;
  response.assignSocket(socket as import('node:net').Socket);
  response.once('finish', () => {
    response.detachSocket(socket as import('node:net').Socket);
    socket.end();
  });
  server.emit('request', request, response);
}

/** true when `path` is already routed on `server`. */
export function isRouted(server: UpgradeServer, path: string): boolean {
  const d = (server as WithDispatcher)[kDispatcher];
  const normalized = normalizeMountPath(path);
  return d !== undefined && d.routes.some((r) => r.path === normalized);
}

/**
 * Refuses an upgrade with a real HTTP response (status line, small body,
 * `Connection: close`), then closes the socket: the client sees the status,
 * and no 101.
 */
export function refuseUpgrade(socket: Duplex, status: number, message?: string): void {
  if (socket.destroyed) return;
  const body = message ?? STATUS_CODES[status] ?? 'Error';
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Connection: close\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    '\r\n' +
    body,
  );
}

const KEY_RE = /^[+/0-9A-Za-z]{22}==$/;

/** The status for a request that is not a websocket handshake at all, or undefined when it is one. */
export function handshakeProblem(request: IncomingMessage): number | undefined {
  if (request.method !== 'GET') return 405;
  if (request.headers.upgrade?.toLowerCase() !== 'websocket') return 400;
  const key = request.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !KEY_RE.test(key)) return 400;
  const version = request.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return 400;
  return undefined;
}
