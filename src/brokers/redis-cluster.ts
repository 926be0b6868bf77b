/**
 * The Redis Cluster broker: sharded pub/sub (SPUBLISH / SSUBSCRIBE, Redis 7),
 * so a message travels only within the shard that owns its channel instead of
 * across the whole cluster. A channel, its history stream and its trim marker
 * share one hash tag (`atr:{organization.7}`), hence one slot, so the publish
 * script touches one node. node-redis routes commands by slot, follows MOVED,
 * keeps one sharded-subscriber connection per shard and resubscribes them
 * when a node comes back or slots move.
 */
import { createCluster } from 'redis';
import type { RedisClusterOptions } from 'redis';
import { AtrConfigError, codes } from '../errors';
import { RedisBrokerBase, backoff } from './redis-base';
import type { RedisBrokerBaseOptions } from './redis-base';
import { historyScript, publishScript } from './redis-scripts';

export interface RedisClusterBrokerOptions extends RedisBrokerBaseOptions {
  /** `redis+cluster://[[user]:password@]host:port,host:port` (`rediss+cluster://` for TLS): some of the nodes. */
  url: string;
  /** More node-redis cluster options, merged under ours. */
  clusterOptions?: Partial<RedisClusterOptions>;
}

type Cluster = ReturnType<typeof createCluster>;

/** The root nodes and credentials of a `redis+cluster://` URL. */
export function parseClusterUrl(url: string): { rootNodes: { url: string }[]; tls: boolean } {
  const m = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/.exec(url);
  if (!m) {
    throw new AtrConfigError(codes.CONFIG_BROKER, `A Redis Cluster URL looks like redis+cluster://host:port,host:port; got ${JSON.stringify(url)}`);
  }
  const [, scheme, auth, hosts] = m;
  const rootNodes = hosts!.split(',').filter(Boolean).map((host) => {
    if (!/^[^:]+:\d+$|^\[[^\]]+\]:\d+$/.test(host)) {
      throw new AtrConfigError(codes.CONFIG_BROKER, `Each node of a Redis Cluster URL needs host:port; got ${JSON.stringify(host)} in ${JSON.stringify(url)}`);
    }
    return { url: `${scheme}://${auth ? `${auth}@` : ''}${host}` };
  });
  return { rootNodes, tls: scheme === 'rediss' };
}

/**
 * @example
 * const atr = createAtr({ broker: 'redis+cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000' });
 */
export class RedisClusterBroker extends RedisBrokerBase {
  readonly kind = 'redis-cluster';
  protected readonly publishCommand = 'SPUBLISH';
  private readonly cluster: Cluster;
  private connected = false;
  private running = false;
  /** Every master answered the last probe. */
  private healthy = true;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private readonly onMessage = (message: string, channel: string) => this.deliver(channel, message);

  constructor(options: RedisClusterBrokerOptions) {
    super(options);
    const { rootNodes } = parseClusterUrl(options?.url);
    const { reconnectMinDelay, reconnectMaxDelay, connectTimeout, commandTimeout, pingInterval } = this.tuning;
    const delay = backoff(reconnectMinDelay, reconnectMaxDelay);
    const user = options.clusterOptions ?? {};
    this.cluster = createCluster({
      ...user,
      rootNodes,
      defaults: {
        ...user.defaults,
        disableOfflineQueue: true,
        pingInterval: pingInterval || undefined,
        commandOptions: { timeout: commandTimeout },
        socket: {
          ...(user.defaults?.socket as object),
          connectTimeout,
          keepAlive: true,
          keepAliveInitialDelay: 5000,
          reconnectStrategy: (retries: number) => delay(retries),
        },
      } as RedisClusterOptions['defaults'],
    }) as Cluster;
    this.cluster.on('error', (err: Error) => {
      this.logger.debug({ broker: this.kind, err }, 'atr: Redis Cluster error');
    });
    this.cluster.on('node-error', (err: Error, node: unknown) => {
      this.logger.debug({ broker: this.kind, err, node }, 'atr: a Redis Cluster node failed');
      // Look now rather than at the next probe: /readyz should say so soon.
      if (this.connected && this.healthy) this.scheduleProbe(0);
    });
  }

  get ready(): boolean {
    return !this.closed && this.connected && this.healthy && this.cluster.isOpen;
  }

  protected start(): void {
    if (this.running) return;
    this.running = true;
    const attempt = (retries: number): void => {
      this.cluster.connect().then(
        async () => {
          await this.loadScripts();
          this.connected = true;
          this.updateReadiness();
          this.scheduleProbe(this.tuning.pingInterval || 10_000);
        },
        (err: Error) => {
          if (this.closed) return;
          this.attemptFailed(err);
          // The first discovery of the slots failed: try again with backoff.
          const timer = setTimeout(() => attempt(retries + 1), backoff(this.tuning.reconnectMinDelay, this.tuning.reconnectMaxDelay)(retries));
          timer.unref();
        },
      );
    };
    attempt(0);
  }

  /** On every master, so that pipelined publishes never meet NOSCRIPT (see RedisBroker). */
  private async loadScripts(): Promise<void> {
    try {
      for (const master of this.cluster.masters) {
        const client = await this.cluster.nodeClient(master);
        for (const script of [publishScript, historyScript]) await client.sendCommand(['SCRIPT', 'LOAD', script.source]);
      }
    } catch (err) {
      this.logger.warn({ broker: this.kind, err }, 'atr: loading the Lua scripts failed; EVAL is used instead');
    }
  }

  /**
   * Readiness on a cluster: every master answers in time and says cluster_state:ok. node-redis
   * reconnects each node and restores its sharded subscriptions by itself;
   * the probe only tells when that is done. While unhealthy it looks often.
   */
  private scheduleProbe(delay: number): void {
    if (this.closed) return;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => void this.probe(), delay);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    if (this.closed || this.probing) return;
    this.probing = true;
    let ok = true;
    let failure: Error | undefined;
    try {
      await Promise.all(this.cluster.masters.map(async (master) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          const client = await this.cluster.nodeClient(master);
          const info = await Promise.race([
            client.sendCommand(['CLUSTER', 'INFO']),
            new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${this.tuning.pingTimeout} ms`)), this.tuning.pingTimeout); }),
          ]);
          // A node that answers while the cluster is down (it saw a peer fail) refuses commands too.
          if (!String(info).includes('cluster_state:ok')) throw new Error('the cluster is down (cluster_state:fail)');
        } catch (err) {
          ok = false;
          failure = err as Error;
        } finally {
          clearTimeout(timer);
        }
      }));
    } finally {
      this.probing = false;
    }
    if (this.closed) return;
    if (!ok) this.attemptFailed(failure);
    const was = this.healthy;
    this.healthy = ok;
    if (ok && !was) await this.loadScripts(); // a restarted node has an empty script cache
    this.updateReadiness(failure);
    this.scheduleProbe(ok ? this.tuning.pingInterval || 10_000 : Math.max(100, this.tuning.reconnectMinDelay));
  }

  protected async stop(): Promise<void> {
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.connected = false;
    if (!this.cluster.isOpen) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.cluster.close().catch(() => undefined),
      new Promise((resolve) => { timer = setTimeout(resolve, 1000); }),
    ]);
    clearTimeout(timer);
    try {
      this.cluster.destroy();
    } catch {
      // closed already
    }
  }

  protected send(key: string, args: string[]): Promise<unknown> {
    return this.cluster.sendCommand(key, false, args);
  }

  protected async doSubscribe(channel: string): Promise<void> {
    await this.cluster.sSubscribe(this.wireChannel(channel), this.onMessage);
  }

  protected async doUnsubscribe(channel: string): Promise<void> {
    await this.cluster.sUnsubscribe(this.wireChannel(channel), this.onMessage);
  }

  // `atr:{}` (the root scope) has an empty hash tag, so Redis would hash the whole name and
  // its history key would land in another slot: give it a tag no scope can have.
  protected override wireChannel(channel: string): string {
    const open = channel.indexOf('{');
    return open >= 0 && channel[open + 1] === '}' ? `${channel.slice(0, open)}{.}${channel.slice(open + 2)}` : channel;
  }

  protected override channelOfWire(wire: string): string {
    const open = wire.indexOf('{');
    return open >= 0 && wire.startsWith('{.}', open) ? `${wire.slice(0, open)}{}${wire.slice(open + 3)}` : wire;
  }
}
