/**
 * The Redis broker: one Redis server (node-redis v5). Two connections, as
 * Redis requires: a publisher that runs the publish and history scripts, and a
 * subscriber that holds one SUBSCRIBE per channel this process listens to.
 * Both reconnect with backoff and are replaced when a PING goes unanswered.
 */
import type { RedisClientOptions } from 'redis';
import { AtrConfigError, codes } from '../errors';
import { RedisBrokerBase, backoff } from './redis-base';
import type { RedisBrokerBaseOptions } from './redis-base';
import { RedisConnection } from './redis-connection';
import { historyScript, publishManyScript, publishScript } from './redis-scripts';

export interface RedisBrokerOptions extends RedisBrokerBaseOptions {
  /** `redis://[[user]:password@]host[:port][/db]` or `rediss://…` (TLS). */
  url: string;
  /** More node-redis client options (tls settings, name, ...), merged under ours. */
  clientOptions?: RedisClientOptions;
}

/**
 * @example
 * const atr = createAtr({ broker: new RedisBroker({ url: 'redis://:secret@redis.internal:6379/2', pingInterval: 5000 }) });
 */
export class RedisBroker extends RedisBrokerBase {
  readonly kind = 'redis';
  protected readonly publishCommand = 'PUBLISH';
  protected override readonly batches = true;
  private readonly publisher: RedisConnection;
  private readonly subscriber: RedisConnection;
  private running = false;
  /** The subscriber holds every wanted channel (false from a loss until restoreSubscriptions ends). */
  private restored = false;
  /** The scripts are in the server's cache, so EVALSHA cannot meet NOSCRIPT (see loadScripts). */
  private scriptsLoaded = false;
  private readonly onMessage = (message: string, channel: string) => this.deliver(channel, message);

  constructor(options: RedisBrokerOptions) {
    super(options);
    if (typeof options?.url !== 'string' || !/^rediss?:\/\/./.test(options.url)) {
      throw new AtrConfigError(codes.CONFIG_BROKER, `The Redis broker needs a redis:// or rediss:// URL; got ${JSON.stringify(options?.url)}`);
    }
    const { reconnectMinDelay, reconnectMaxDelay, connectTimeout, commandTimeout, pingInterval, pingTimeout } = this.tuning;
    const delay = backoff(reconnectMinDelay, reconnectMaxDelay);
    const user = options.clientOptions ?? {};
    const client = (role: string): RedisClientOptions => ({
      ...user,
      url: options.url,
      name: user.name ?? `atr-${role}`,
      // Fail commands at once while disconnected instead of queueing them for later.
      disableOfflineQueue: true,
      commandOptions: role === 'publisher' ? { timeout: commandTimeout } : undefined,
      socket: {
        ...(user.socket as object),
        connectTimeout,
        keepAlive: true,
        keepAliveInitialDelay: 5000,
        reconnectStrategy: (retries: number) => delay(retries),
      } as RedisClientOptions['socket'],
    });
    this.publisher = new RedisConnection({ role: 'publisher', client: client('publisher'), pingInterval, pingTimeout });
    this.subscriber = new RedisConnection({ role: 'subscriber', client: client('subscriber'), pingInterval, pingTimeout });
    for (const connection of [this.publisher, this.subscriber]) {
      connection.on('attempt-failed', (err: Error) => this.attemptFailed(err));
      connection.on('down', (err: Error) => this.updateReadiness(err));
      connection.on('replaced', (reason: string) => this.logger.warn({ broker: this.kind, connection: connection.role, reason }, 'atr: replacing a dead Redis connection'));
    }
    this.subscriber.on('down', () => {
      this.restored = false;
    });
    this.publisher.on('down', () => {
      this.scriptsLoaded = false;
    });
    this.publisher.on('ready', () => {
      void this.loadScripts();
    });
    this.subscriber.on('ready', () => {
      void this.restoreSubscriptions();
    });
  }

  get ready(): boolean {
    return !this.closed && this.restored && this.scriptsLoaded && this.publisher.ready && this.subscriber.ready;
  }

  protected start(): void {
    if (this.running) return;
    this.running = true;
    this.publisher.start();
    this.subscriber.start();
  }

  protected async stop(): Promise<void> {
    await Promise.all([this.publisher.close(), this.subscriber.close()]);
  }

  protected send(_key: string, args: string[]): Promise<unknown> {
    const client = this.publisher.client;
    if (!client) return Promise.reject(new Error('no connection'));
    return client.sendCommand(args);
  }

  protected async doSubscribe(channel: string): Promise<void> {
    const client = this.subscriber.client;
    if (!client) throw new Error('no connection');
    await client.subscribe(this.wireChannel(channel), this.onMessage);
  }

  protected async doUnsubscribe(channel: string): Promise<void> {
    await this.subscriber.client?.unsubscribe(this.wireChannel(channel), this.onMessage);
  }

  /**
   * Publishes are pipelined: were the first EVALSHA of a fresh server answered
   * NOSCRIPT, its EVAL retry would go out after later publishes and reorder
   * them. So the scripts are loaded before the broker says it is ready.
   */
  private async loadScripts(): Promise<void> {
    const client = this.publisher.client;
    if (!client) return;
    try {
      for (const script of [publishScript, publishManyScript, historyScript]) await client.sendCommand(['SCRIPT', 'LOAD', script.source]);
    } catch (err) {
      this.logger.warn({ broker: this.kind, err }, 'atr: loading the Lua scripts failed; EVAL is used instead');
    }
    if (this.publisher.client !== client || !client.isReady) return;
    this.scriptsLoaded = true;
    this.updateReadiness();
  }

  private async restoreSubscriptions(): Promise<void> {
    const client = this.subscriber.client;
    if (!client) return;
    // node-redis restores its own subscriptions after a reconnect; a replaced client has none.
    const current = new Set(client.getPubSubListeners('CHANNELS').keys());
    await this.resubscribe(current);
    if (this.subscriber.client !== client || !client.isReady) return;
    this.restored = true;
    this.updateReadiness();
  }

  protected override subscriberReady(): boolean {
    return !this.closed && this.subscriber.ready;
  }
}
