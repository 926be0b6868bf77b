/**
 * One node-redis connection that stays up: it reconnects with backoff
 * (node-redis does that), and it is replaced when it silently died—a TCP
 * connection cut by a firewall or NAT answers nothing and reports nothing, so
 * a PING that gets no answer within `pingTimeout` destroys the client and
 * starts a new one. Events: `ready`, `down` (error), `attempt-failed` (error;
 * a failed connection attempt), `replaced` (reason).
 */
import { EventEmitter } from 'node:events';
import { createClient } from 'redis';
import type { RedisClientOptions } from 'redis';

export type AnyRedisClient = ReturnType<typeof createClient>;

export interface RedisConnectionOptions {
  /** For logs: `publisher`, `subscriber`. */
  role: string;
  client: RedisClientOptions;
  /** How often the liveness PING runs, ms; 0 turns it off. */
  pingInterval: number;
  /** How long a PING may stay unanswered before the connection counts as dead, ms. */
  pingTimeout: number;
}

export class RedisConnection extends EventEmitter {
  client: AnyRedisClient | undefined;
  private wasReady = false;
  private closed = false;
  private watchdog: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RedisConnectionOptions) {
    super();
  }

  get ready(): boolean {
    return !this.closed && this.wasReady && Boolean(this.client?.isReady);
  }

  get role(): string {
    return this.options.role;
  }

  /** Creates the client and connects it in the background (node-redis retries on its own). */
  start(): void {
    if (this.closed) return;
    const client = createClient(this.options.client) as AnyRedisClient;
    this.client = client;
    const current = () => this.client === client && !this.closed;
    client.on('error', (err: Error) => {
      if (!current()) return;
      // node-redis emits one error per failed attempt while it retries.
      if (this.wasReady) this.markDown(err);
      else this.emit('attempt-failed', err);
    });
    client.on('reconnecting', () => {
      if (current() && this.wasReady) this.markDown(new Error('connection lost'));
    });
    client.on('end', () => {
      if (current()) this.markDown(new Error('connection ended'));
    });
    client.on('ready', () => {
      if (!current()) return;
      this.wasReady = true;
      this.emit('ready');
    });
    client.connect().catch((err: Error) => {
      // Only when node-redis gives up (it does not with our strategy) or the client was replaced.
      if (current()) this.emit('attempt-failed', err);
    });
    this.startWatchdog();
  }

  /** Throws the client away and starts a new one (subscriptions must be made again by the owner). */
  replace(reason: string): void {
    if (this.closed) return;
    const old = this.client;
    this.client = undefined;
    this.clearPing();
    this.markDown(new Error(reason));
    this.emit('replaced', reason);
    try {
      old?.destroy();
    } catch {
      // already gone
    }
    this.start();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
    this.clearPing();
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    if (client.isReady) {
      // A polite QUIT, bounded: a dead connection must not hold up shutdown.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        client.close().catch(() => undefined),
        new Promise((resolve) => { timer = setTimeout(resolve, 1000); }),
      ]);
      clearTimeout(timer);
    }
    try {
      client.destroy();
    } catch {
      // closed already
    }
  }

  private markDown(err: Error): void {
    if (!this.wasReady) return;
    this.wasReady = false;
    this.clearPing();
    this.emit('down', err);
  }

  private startWatchdog(): void {
    const { pingInterval } = this.options;
    if (!pingInterval || this.watchdog) return;
    this.watchdog = setInterval(() => this.probe(), pingInterval);
    this.watchdog.unref();
  }

  private probe(): void {
    const client = this.client;
    if (!client || !this.ready || this.pingTimer) return;
    this.pingTimer = setTimeout(() => {
      this.pingTimer = undefined;
      if (this.client === client) this.replace(`no answer to PING within ${this.options.pingTimeout} ms`);
    }, this.options.pingTimeout);
    this.pingTimer.unref();
    client.ping().then(
      () => {
        if (this.client === client) this.clearPing();
      },
      () => {
        // Connection errors arrive through the client's 'error' event.
        if (this.client === client) this.clearPing();
      },
    );
  }

  private clearPing(): void {
    if (this.pingTimer) clearTimeout(this.pingTimer);
    this.pingTimer = undefined;
  }
}
