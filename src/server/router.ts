/**
 * `atrRouter(atr)`: the websocket endpoint as Express middleware, for Express
 * 4 and 5 alike. It does not use express-ws's `router.ws` (broken on Express
 * 5); it looks to Express like a sub-app (a function with `handle`, `set` and
 * `emit`), so `app.use('/ws', router)` tells it where it is mounted and which
 * app it lives in, without pulling a second copy of Express into the request.
 *
 * Where it can, it attaches itself to the HTTP server and answers upgrades
 * under its mount path before express-ws would (see upgrade.ts): on the
 * parent app's `listen()`, on the first request it sees, or by
 * `router.attach(server)`. Until then, sockets express-ws upgraded are
 * checked after the upgrade and refused with close codes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { Atr } from '../atr';
import { getAtr } from '../atr';
import { AtrConfigError, codes } from '../errors';
import { handleUpgradedSocket, handleUpgradeRequest } from './handshake';
import type { Hub } from './hub';
import { getHub } from './hub';
import type { UpgradeServer } from './upgrade';
import { isRouted, routeUpgrades, splitTarget } from './upgrade';

type Next = (err?: unknown) => void;

/** The Express-mountable websocket endpoint returned by `atrRouter()`. */
export interface AtrRouter {
  (req: IncomingMessage, res: ServerResponse, next: Next): void;
  /**
   * Answers websocket upgrades on `server` (a user-created `http` or `https`
   * server) before any other upgrade listener. `path` defaults to where the
   * router is mounted; give it when the router is mounted in an
   * `express.Router()` rather than an app.
   */
  attach(server: UpgradeServer, path?: string): AtrRouter;
  /** Closes every connection with 1001, drops subscriptions and timers; later upgrades get 503. Closes the hub of the Atr. */
  close(): Promise<void>;
  /** The hub of the router's Atr (its `metrics`). */
  readonly hub: Hub;
  /** @internal Express sub-app protocol. */
  handle(req: IncomingMessage, res: ServerResponse, next: Next): void;
  /** @internal Express sub-app protocol. */
  set(setting: string, value?: unknown): unknown;
  /** @internal Express sub-app protocol: receives `mount`. */
  emit(event: string, ...args: unknown[]): boolean;
  /** Set by Express when mounted. */
  mountpath?: string | string[];
  /** Set by Express when mounted. */
  parent?: ExpressAppLike;
}

interface ExpressAppLike {
  listen?: (...args: unknown[]) => unknown;
  path?: () => string;
  on?: (event: string, listener: (parent: ExpressAppLike) => void) => unknown;
}

interface ExpressWsRequest extends IncomingMessage {
  ws?: WebSocket;
  wsHandled?: boolean;
  baseUrl?: string;
}

const WEBSOCKET_SUFFIX = /\/\.websocket$/;
const PATTERN_CHARS = /[:*?()[\]{}+]/;
const warned = new WeakSet<Atr>();

function isServer(value: unknown): value is UpgradeServer {
  const s = value as UpgradeServer;
  return typeof value === 'object' && value !== null && typeof s.emit === 'function' && typeof s.listen === 'function' && typeof s.listenerCount === 'function';
}

/**
 * The websocket endpoint of an Atr, to mount in an Express 4 or 5 app with
 * express-ws. Each connection is authenticated and scoped by the configured
 * `authenticateWith` and `scopeWith` (they see the path below the mount
 * point); a refused request gets 401/403 before the upgrade.
 *
 * @example
 * const app = express();
 * expressWs(app);
 * app.use('/ws', atrRouter(atr));
 * app.listen(3000);                    // ws://localhost:3000/ws/organization/7?token=…
 *
 * // your own server:
 * const server = https.createServer(tlsOptions, app);
 * router.attach(server);
 */
export function atrRouter(atr: Atr = getAtr(), ...rest: unknown[]): AtrRouter {
  if (rest.length > 0) {
    // Options live on the Atr: a second argument would be silently ignored.
    throw new AtrConfigError(codes.CONFIG_OPTION, 'atrRouter() takes one argument, an Atr; pass options to configure() or createAtr()');
  }
  if (atr === null || typeof atr !== 'object' || typeof atr.channelOf !== 'function') {
    throw new AtrConfigError(codes.CONFIG_OPTION, 'atrRouter() takes an Atr (from configure() or createAtr()), or nothing for the configured one');
  }
  const hub = getHub(atr);
  if (atr.options.openAccess && !warned.has(atr)) {
    warned.add(atr);
    atr.options.logger.warn({}, 'atr: no authenticateWith is configured: every websocket request is accepted');
  }
  const hookedApps = new WeakSet<object>();
  const attached = new WeakSet<object>();
  let learnedPath: string | undefined;

  const router = function atrRouter(req: IncomingMessage, _res: ServerResponse, next: Next): void {
    const request = req as ExpressWsRequest;
    if (learnedPath === undefined && router.parent === undefined && typeof request.baseUrl === 'string') {
      // Mounted in an express.Router(): no mount event, but Express says where we are.
      learnedPath = request.baseUrl;
    }
    attachTo((req.socket as unknown as { server?: unknown }).server, undefined, true);
    const ws = request.ws;
    if (ws !== undefined && ws !== null) {
      // express-ws upgraded this request before routing it to us.
      request.wsHandled = true;
      const { pathname, query } = splitTarget(req.url);
      handleUpgradedSocket(atr, hub, ws, req, pathname.replace(WEBSOCKET_SUFFIX, ''), query);
      return;
    }
    // A plain HTTP request: the app's own routes answer it.
    next();
  } as AtrRouter;

  function mountPaths(): string[] | undefined {
    if (router.parent === undefined) return learnedPath === undefined ? undefined : [learnedPath];
    const base = typeof router.parent.path === 'function' ? router.parent.path() : '';
    const mounts = Array.isArray(router.mountpath) ? router.mountpath : [router.mountpath ?? '/'];
    const paths: string[] = [];
    for (const mount of mounts) {
      // A pattern or RegExp mount cannot be matched before routing: those
      // requests reach the router through express-ws and are checked there.
      if (typeof mount !== 'string' || PATTERN_CHARS.test(mount) || PATTERN_CHARS.test(base)) continue;
      paths.push(base + (mount === '/' ? '' : mount));
    }
    return paths;
  }

  function attachTo(server: unknown, path: string | undefined, quiet: boolean): void {
    // The first request of a server attaches it; later ones need not look again.
    if (quiet && path === undefined && attached.has(server as object)) return;
    if (!isServer(server)) {
      if (quiet) return;
      throw new AtrConfigError(codes.CONFIG_OPTION, 'attach() takes an http.Server or https.Server');
    }
    const paths = path !== undefined ? [path] : mountPaths();
    if (paths === undefined) {
      if (quiet) return;
      throw new AtrConfigError(codes.CONFIG_OPTION, 'attach(server): mount the router first (app.use(path, router)) or pass the path: attach(server, "/ws")');
    }
    if (path === undefined) attached.add(server);
    for (const p of paths) {
      if (isRouted(server, p)) continue;
      routeUpgrades(server, p, (request, socket, head, rest, query) =>
        handleUpgradeRequest(atr, hub, request, socket, head, rest, query));
    }
  }

  /** Wraps `listen` of the app (and of the apps it is mounted in) so that the server it makes is attached. */
  function hookListen(app: ExpressAppLike): void {
    if (hookedApps.has(app)) return;
    hookedApps.add(app);
    const original = app.listen;
    if (typeof original === 'function') {
      app.listen = function listen(this: unknown, ...args: unknown[]) {
        const server = original.apply(this, args);
        attachTo(server, undefined, true);
        return server;
      };
    }
    app.on?.('mount', (parent) => hookListen(parent));
  }

  router.handle = router;
  router.set = () => router;
  router.emit = (event: string, ...args: unknown[]) => {
    const parent = args[0];
    if (event === 'mount' && ((typeof parent === 'object' && parent !== null) || typeof parent === 'function')) {
      hookListen(parent as ExpressAppLike);
    }
    return true;
  };
  router.attach = (server: UpgradeServer, path?: string) => {
    attachTo(server, path, false);
    return router;
  };
  // The routes stay on the servers: an upgrade that comes after close() is
  // answered 503 by atr rather than upgraded by express-ws.
  router.close = () => hub.close();
  Object.defineProperty(router, 'hub', { value: hub, enumerable: true });
  return router;
}
