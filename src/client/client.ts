/**
 * The atr client: one websocket to an atr endpoint, events by name,
 * reconnect with backoff, a heartbeat, and the last event id per scope.
 * Runs in browsers (the global WebSocket) and in Node (`ws`, see index.ts).
 */
import { backoffDelay, validateBackoff } from './backoff';
import type { BackoffOptions } from './backoff';
import { TinyEmitter } from './emitter';
import { Positions } from './positions';

/** What the client needs of a WebSocket: the browser's, or `ws`'s. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drop the connection without a closing handshake. */
  terminate?(): void;
  /** `ws` only: Node-style events (`unexpected-response`). */
  on?(event: string, listener: (...args: any[]) => void): unknown;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: any) => WebSocketLike;

/** Why a connection ended. */
export interface CloseInfo {
  /** The close code: 1006 for a connection that failed or was refused before it opened (browsers cannot tell which). */
  code: number;
  reason: string;
  /** Whether the socket had opened. */
  wasOpen: boolean;
  /** The HTTP status of a refused upgrade, when the platform shows it (Node's `ws` does, browsers do not). */
  status?: number;
  /** Connections in a row that failed or did not last (reset by one that stays up). */
  failures: number;
  /** The server refused this client (HTTP 401/403, close 4401, 4403 or 1008): it will not reconnect. */
  refused: boolean;
}

export interface ReconnectInfo {
  /** 1 for the first try after a loss. */
  attempt: number;
  /** ms until the next try. */
  delay: number;
}

export interface AtrClientOptions {
  /** The endpoint, or a function that returns it (say, with a fresh token) for each try. */
  url: string | (() => string | Promise<string>);
  /** A WebSocket class; default: the global one in browsers, `ws` in Node. */
  WebSocket?: WebSocketConstructor;
  protocols?: string | string[];
  /** Send `{"type":"ping"}` this often, ms (25 000); 0 turns the heartbeat off. */
  pingInterval?: number;
  /** Give up on a silent server this long after a ping, ms (10 000), and reconnect. */
  pongTimeout?: number;
  /** Reconnect delays. */
  reconnect?: BackoffOptions;
  /** A connection that stays up this long, ms (5 000), resets the backoff. */
  stableAfter?: number;
  /**
   * Asked before each reconnect (not after a refusal, which never reconnects).
   * In a browser a refused upgrade looks like any failed one (close 1006 and
   * no open), so an app can check here, say, whether its token still works.
   */
  shouldReconnect?: (info: CloseInfo) => boolean | Promise<boolean>;
  /** Called once when the server refuses the client (HTTP 401/403, 4401, 4403, 1008). */
  onRefused?: (info: CloseInfo) => void;
  /** Start connecting at once (true). */
  autoConnect?: boolean;
  /**
   * Where to start, per scope: `{ 'organization.7': position }`, say the
   * position the app's HTTP response carried with its data (snapshot then
   * subscribe). The server sends what came after it, then live events.
   */
  positions?: Record<string, string>;
  /** Ask the server, on every reconnect, for the events missed since the last one seen (true). */
  resume?: boolean;
}

/** The query parameter that carries the positions to resume from (JSON `{scope: id}`). */
export const RESUME_PARAM = 'atr_resume';

export type ClientState = 'idle' | 'connecting' | 'open' | 'waiting' | 'refused' | 'closed';

/** Close codes after which the client does not come back. */
export const NO_RECONNECT_CODES: ReadonlySet<number> = new Set([4401, 4403, 1008]);
/** HTTP statuses of a refused upgrade after which the client does not come back. */
export const NO_RECONNECT_STATUSES: ReadonlySet<number> = new Set([401, 403]);
/** The code the client reports when it gave up on a server that went silent. */
export const SILENT_SERVER_CODE = 4000;

const OPEN = 1;

/**
 * A live connection to an atr endpoint.
 *
 * Events: every event name (`post.created`), `'*'` for every event,
 * the library's own messages (`atr.ready`, `atr.error`), and the lifecycle:
 * `open`, `close` (CloseInfo), `reconnecting` (ReconnectInfo), `refused`
 * (CloseInfo), `error`.
 *
 * @example
 * const client = new AtrClient({ url: `wss://app.example.com/ws/organization/7?token=${token}` });
 * client.on('post.created', (event) => addPost(event.record));
 * client.on('refused', () => signOut());
 * // later: client.close();
 */
export class AtrClient extends TinyEmitter {
  /** The WebSocket class used when none is given. */
  static defaultWebSocket: WebSocketConstructor | undefined =
    typeof globalThis !== 'undefined' ? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket : undefined;

  /** The last event id per scope (what resume sends). */
  readonly positions = new Positions();
  /** The scopes the server confirmed in `atr.ready`. */
  scopes: string[] = [];

  private readonly options: AtrClientOptions;
  private readonly WebSocketClass: WebSocketConstructor;
  private socket: WebSocketLike | undefined;
  private stateValue: ClientState = 'idle';
  private stopped = false;
  private failures = 0;
  private openedAt = 0;
  private readySeen = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  private closeWaiters: Array<() => void> = [];

  constructor(options: AtrClientOptions | string) {
    super();
    const opts = typeof options === 'string' ? { url: options } : options;
    if (!opts || (typeof opts.url !== 'string' && typeof opts.url !== 'function') || opts.url === '') {
      throw new TypeError('The "url" option must be a ws:// or wss:// URL, or a function that returns one');
    }
    for (const name of ['pingInterval', 'pongTimeout', 'stableAfter'] as const) {
      const v = opts[name];
      if (v !== undefined && (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v))) {
        throw new TypeError(`The "${name}" option must be a number of milliseconds >= 0; got ${String(v)}`);
      }
    }
    validateBackoff(opts.reconnect ?? {});
    const WS = opts.WebSocket ?? (this.constructor as typeof AtrClient).defaultWebSocket;
    if (typeof WS !== 'function') {
      throw new TypeError('No WebSocket class: pass the "WebSocket" option (in Node: the `ws` package)');
    }
    if (opts.positions !== undefined) {
      if (opts.positions === null || typeof opts.positions !== 'object') {
        throw new TypeError('The "positions" option must be an object { scope: eventId }');
      }
      for (const [scope, id] of Object.entries(opts.positions)) {
        if (typeof id !== 'string') throw new TypeError(`The "positions" option must map scopes to event ids; got ${typeof id} for "${scope}"`);
        this.positions.set(scope, id);
      }
    }
    this.options = opts;
    this.WebSocketClass = WS;
    if (opts.autoConnect ?? true) {
      // Let the caller attach listeners first.
      Promise.resolve().then(() => this.connect());
    }
  }

  /** Where the client is: idle, connecting, open, waiting (to reconnect), refused, closed. */
  get state(): ClientState {
    return this.stateValue;
  }

  /** Opens the connection (once; later calls do nothing while it is live). Throws after close(). */
  connect(): this {
    if (this.stopped) {
      if (this.stateValue === 'refused') return this;
      throw new Error('This AtrClient was closed; make a new one');
    }
    if (this.stateValue === 'idle' || this.stateValue === 'waiting') {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      void this.openSocket();
    }
    return this;
  }

  /** Sends a small JSON message to the server; false when not connected. */
  send(message: Record<string, unknown>): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  /** Closes for good: no reconnect. Resolves once the socket is closed. */
  close(): Promise<void> {
    const wasStopped = this.stopped;
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.stopHeartbeat();
    const socket = this.socket;
    if (!socket) {
      if (!wasStopped || this.stateValue !== 'refused') this.stateValue = 'closed';
      return Promise.resolve();
    }
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    try {
      socket.close(1000, 'client closed');
    } catch {
      this.handleClose(socket, { code: 1000, reason: 'client closed', wasOpen: this.stateValue === 'open' });
    }
    return done;
  }

  private async openSocket(): Promise<void> {
    this.stateValue = 'connecting';
    this.readySeen = false;
    let url: string;
    try {
      url = typeof this.options.url === 'function' ? await this.options.url() : this.options.url;
    } catch (err) {
      this.emit('error', err);
      this.afterLoss({ code: 1006, reason: 'the url function threw', wasOpen: false });
      return;
    }
    if (this.stopped) return;
    url = this.withResume(url);
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketClass(url, this.options.protocols, this.socketOptions());
    } catch (err) {
      // A malformed URL: retrying will not fix it.
      this.stopped = true;
      this.stateValue = 'closed';
      this.emit('error', err);
      return;
    }
    this.socket = socket;
    let wasOpen = false;
    let status: number | undefined;
    if (typeof socket.on === 'function') {
      // Node's `ws` shows the HTTP status of a refused upgrade; browsers hide it.
      socket.on('unexpected-response', (_req: unknown, res: { statusCode?: number; resume?: () => void }) => {
        status = res.statusCode;
        res.resume?.();
        if (socket.terminate) socket.terminate();
        else socket.close();
      });
    }
    socket.onopen = () => {
      if (this.socket !== socket) return;
      wasOpen = true;
      this.openedAt = Date.now();
      this.stateValue = 'open';
      this.startHeartbeat(socket);
      this.emit('open');
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.heardFromServer();
      this.handleMessage(event.data);
    };
    socket.onerror = (event) => {
      if (this.socket !== socket) return;
      this.emit('error', event?.error ?? new Error(event?.message ?? 'websocket error'));
    };
    socket.onclose = (event) => {
      this.handleClose(socket, { code: event.code, reason: event.reason ?? '', wasOpen, status });
    };
  }

  /**
   * The URL with the positions to resume from. They travel in the upgrade
   * request, not in a first message, so that the server can replay and then
   * go live without a window in which a live event overtakes the replay.
   */
  private withResume(url: string): string {
    if (this.options.resume === false || this.positions.size === 0) return url;
    const param = `${RESUME_PARAM}=${encodeURIComponent(JSON.stringify(this.positions.toJSON()))}`;
    const hash = url.indexOf('#');
    const base = hash < 0 ? url : url.slice(0, hash);
    const cleaned = base.replace(new RegExp(`([?&])${RESUME_PARAM}=[^&]*(&|$)`), (_m, lead: string, tail: string) => (tail ? lead : ''));
    return `${cleaned}${cleaned.includes('?') ? '&' : '?'}${param}`;
  }

  /** Extra constructor options for the WebSocket class (Node's `ws` takes headers). */
  protected socketOptions(): unknown {
    return undefined;
  }

  private handleMessage(data: unknown): void {
    let message: any;
    try {
      message = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      this.emit('error', new Error('The server sent a frame that is not JSON'));
      return;
    }
    if (message === null || typeof message !== 'object' || typeof message.name !== 'string') return;
    const name: string = message.name;
    if (name.startsWith('atr.')) {
      if (name === 'atr.ready') {
        this.readySeen = true;
        if (Array.isArray(message.scopes)) this.scopes = message.scopes;
      } else if (name === 'atr.reset' && typeof message.scope === 'string' && typeof message.position === 'string') {
        // The history no longer reaches back to our position: the app refetches
        // (listen to 'atr.reset'), and we go on from the server's position.
        this.positions.set(message.scope, message.position);
      }
      this.emit(name, message);
      return;
    }
    this.positions.record(message);
    this.emit(name, message);
    this.emit('*', message);
  }

  private handleClose(socket: WebSocketLike, raw: { code: number; reason: string; wasOpen: boolean; status?: number }): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
    this.stopHeartbeat();
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    if (this.stopped) {
      this.stateValue = 'closed';
      this.emit('close', this.info(raw, false));
      for (const resolve of waiters) resolve();
      return;
    }
    this.afterLoss(raw);
  }

  private info(raw: { code: number; reason: string; wasOpen: boolean; status?: number }, refused: boolean): CloseInfo {
    const info: CloseInfo = { code: raw.code, reason: raw.reason, wasOpen: raw.wasOpen, failures: this.failures, refused };
    if (raw.status !== undefined) info.status = raw.status;
    return info;
  }

  private afterLoss(raw: { code: number; reason: string; wasOpen: boolean; status?: number }): void {
    const stableAfter = this.options.stableAfter ?? 5000;
    const stable = raw.wasOpen && this.readySeen && Date.now() - this.openedAt >= stableAfter;
    this.failures = stable ? 0 : this.failures + 1;
    const refused = (raw.status !== undefined && NO_RECONNECT_STATUSES.has(raw.status)) || NO_RECONNECT_CODES.has(raw.code);
    const info = this.info(raw, refused);
    this.emit('close', info);
    if (refused) {
      this.stopped = true;
      this.stateValue = 'refused';
      try {
        this.options.onRefused?.(info);
      } catch (err) {
        this.emit('error', err);
      }
      this.emit('refused', info);
      return;
    }
    this.stateValue = 'waiting';
    const hook = this.options.shouldReconnect;
    if (!hook) {
      this.scheduleReconnect();
      return;
    }
    Promise.resolve()
      .then(() => hook(info))
      .then(
        (again) => {
          // close(), or a connect() of the app's own, came first.
          if (this.stopped || this.stateValue !== 'waiting') return;
          if (again === false) {
            this.stopped = true;
            this.stateValue = 'closed';
            return;
          }
          this.scheduleReconnect();
        },
        (err) => {
          this.emit('error', err);
          if (!this.stopped && this.stateValue === 'waiting') this.scheduleReconnect();
        },
      );
  }

  private scheduleReconnect(): void {
    const attempt = Math.max(1, this.failures);
    const delay = backoffDelay(attempt, this.options.reconnect);
    this.stateValue = 'waiting';
    this.emit('reconnecting', { attempt, delay } satisfies ReconnectInfo);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.stopped && this.stateValue === 'waiting') void this.openSocket();
    }, delay);
  }

  private startHeartbeat(socket: WebSocketLike): void {
    const interval = this.options.pingInterval ?? 25_000;
    if (interval <= 0) return;
    const timeout = this.options.pongTimeout ?? 10_000;
    this.pingTimer = setInterval(() => {
      if (this.socket !== socket || socket.readyState !== OPEN) return;
      socket.send('{"type":"ping"}');
      this.pongTimer ??= setTimeout(() => this.dropSilentServer(socket), timeout);
    }, interval);
  }

  private heardFromServer(): void {
    clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
  }

  private stopHeartbeat(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pingTimer = undefined;
    this.pongTimer = undefined;
  }

  /** The server stopped answering: drop the socket now (a closing handshake would wait on the dead peer) and reconnect. */
  private dropSilentServer(socket: WebSocketLike): void {
    if (this.socket !== socket) return;
    try {
      if (socket.terminate) socket.terminate();
      else socket.close(SILENT_SERVER_CODE, 'server silent');
    } catch {
      // already gone
    }
    this.handleClose(socket, { code: SILENT_SERVER_CODE, reason: 'server silent', wasOpen: true });
  }
}
