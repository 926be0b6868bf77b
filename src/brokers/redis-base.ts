/**
 * The protocol shared by the Redis brokers (one server, or a cluster): the
 * publish and history scripts, the id format, the subscriptions this process
 * wants, readiness and its events. Subclasses only move bytes: how a script
 * runs, how a channel is (un)subscribed (`doSubscribe`, `doUnsubscribe`).
 *
 * Subscriptions live here, one listener per channel (the hub fans out), so
 * that after an outage every channel that still has listeners is subscribed
 * again exactly once, whatever the client library did meanwhile.
 */
import { EventEmitter } from 'node:events';
import type { Broker, HistoryOptions, HistoryPage, MessageListener } from './broker';
import { composeMessage, formatEventId } from '../event';
import { AtrBrokerError, AtrConfigError, codes } from '../errors';
import type { Logger } from '../logger';
import type { Script } from './redis-scripts';
import { eventIdOfStreamId, historyKeyOf, historyScript, publishManyScript, publishScript, streamIdOfEventId, trimMarkerKeyOf } from './redis-scripts';
import { DEFAULT_HISTORY } from './memory';

export interface RedisBrokerTuning {
  /** Delay before the first reconnect attempt, ms (100); it doubles up to `reconnectMaxDelay`. */
  reconnectMinDelay?: number;
  /** Longest delay between reconnect attempts, ms (5000). */
  reconnectMaxDelay?: number;
  /** How often each connection is PINGed to find a silently dead one, ms (10000; 0: never). */
  pingInterval?: number;
  /** How long a PING may go unanswered before the connection is replaced, ms (5000). */
  pingTimeout?: number;
  /** Longest wait for one command (publish, history), ms (5000). */
  commandTimeout?: number;
  /** Longest wait of connect() for the first connection, ms (5000). */
  connectTimeout?: number;
}

export interface RedisBrokerBaseOptions extends RedisBrokerTuning {
  history?: Partial<HistoryOptions>;
  logger?: Logger;
  /** The channel prefix, for logs only (channels arrive whole). */
  keyPrefix?: string;
}

export const REDIS_TUNING_DEFAULTS: Required<RedisBrokerTuning> = {
  reconnectMinDelay: 100,
  reconnectMaxDelay: 5000,
  pingInterval: 10_000,
  pingTimeout: 5000,
  commandTimeout: 5000,
  connectTimeout: 5000,
};

const NOOP_LOGGER: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/** Exponential backoff with jitter, so that many processes do not retry in step. */
export function backoff(min: number, max: number): (retries: number) => number {
  return (retries) => {
    const base = Math.min(max, min * 2 ** Math.min(retries, 20));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  };
}

export abstract class RedisBrokerBase extends EventEmitter implements Broker {
  abstract readonly kind: string;
  protected readonly channelListeners = new Map<string, MessageListener>();
  protected readonly historyOptions: HistoryOptions;
  protected readonly tuning: Required<RedisBrokerTuning>;
  protected readonly logger: Logger;
  protected closed = false;
  private wasReady = false;
  private everReady = false;
  private starting: Promise<void> | undefined;
  private started = false;
  private scriptsInFlight = 0;
  private scriptGate: { promise: Promise<void>; open: () => void } | undefined;
  /** SUBSCRIBE commands in flight, so a channel is never asked for twice at once. */
  private readonly subscribing = new Map<string, Promise<void>>();
  /** Times the broker came back after being down. */
  reconnects = 0;
  /** Failed connection attempts since the start. */
  failedAttempts = 0;

  constructor(options: RedisBrokerBaseOptions) {
    super();
    this.historyOptions = { ...DEFAULT_HISTORY, ...options.history };
    this.tuning = { ...REDIS_TUNING_DEFAULTS };
    for (const key of Object.keys(REDIS_TUNING_DEFAULTS) as (keyof RedisBrokerTuning)[]) {
      const value = options[key];
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 2147483647) {
        throw new AtrConfigError(codes.CONFIG_OPTION, `The "${key}" option of the Redis broker must be a number of milliseconds from 0 to 2147483647; got ${String(value)}`);
      }
      this.tuning[key] = value;
    }
    this.logger = options.logger ?? NOOP_LOGGER;
  }

  /** true while publishing and delivery work. */
  abstract get ready(): boolean;
  /** Starts the connections (once); they reconnect on their own from then on. */
  protected abstract start(): void;
  protected abstract stop(): Promise<void>;
  /** Sends one command to the node that owns `key`. */
  protected abstract send(key: string, args: string[]): Promise<unknown>;
  /** Subscribes the transport to a channel; messages go to `this.deliver(channel, message)`. */
  protected abstract doSubscribe(channel: string): Promise<void>;
  protected abstract doUnsubscribe(channel: string): Promise<void>;
  /** PUBLISH or SPUBLISH. */
  protected abstract readonly publishCommand: string;

  /** The name used on the wire for a channel (the cluster maps the root scope's empty hash tag). */
  protected wireChannel(channel: string): string {
    return channel;
  }

  protected channelOfWire(wire: string): string {
    return wire;
  }

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new AtrBrokerError(codes.BROKER_CLOSED, `The ${this.kind} broker is closed`));
    if (this.ready) return Promise.resolve();
    if (this.started) {
      // The connections retry in the background; say now that Redis is down rather than wait.
      return this.starting ?? Promise.reject(this.downError());
    }
    this.started = true;
    this.starting = this.firstConnection().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private firstConnection(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(this.downError(`no connection within ${this.tuning.connectTimeout} ms`)), this.tuning.connectTimeout);
      timer.unref();
      const onReady = () => finish();
      const onAttempt = (err?: Error) => finish(this.downError(err?.message ?? 'connection refused'));
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.off('ready', onReady);
        this.off('attempt-failed', onAttempt);
        if (err) reject(err);
        else resolve();
      };
      this.on('ready', onReady);
      this.on('attempt-failed', onAttempt);
      this.start();
    });
  }

  private downError(detail = 'reconnecting'): AtrBrokerError {
    return new AtrBrokerError(codes.BROKER_CONNECTION, `Redis is unreachable (${detail}); events published now are lost`);
  }

  async publish(channel: string, body: string): Promise<string> {
    if (this.closed) throw new AtrBrokerError(codes.BROKER_CLOSED, `The ${this.kind} broker is closed`);
    // Fail at once while down: the publish pipeline is ordered, a hanging publish would stall it.
    if (!this.ready) throw this.downError();
    const wire = this.wireChannel(channel);
    const { maxLength, maxAgeMs } = this.historyOptions;
    try {
      const id = await this.runScript(publishScript, [historyKeyOf(wire), trimMarkerKeyOf(wire), wire], [body, String(maxLength), String(maxAgeMs), this.publishCommand]);
      return String(id);
    } catch (err) {
      throw new AtrBrokerError(codes.BROKER_PUBLISH, `Publishing on ${channel} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * One script call for many events: the per-call work of the client and of
   * Redis (encoding, a reply, a promise) is paid once, not per event. Only
   * where every key may meet in one script (a single Redis, see `batches`).
   */
  async publishMany(items: Array<{ channel: string; body: string }>): Promise<Array<string | Error>> {
    if (!this.batches || items.length === 1) {
      return Promise.all(items.map(({ channel, body }) => this.publish(channel, body).catch((err: Error) => err)));
    }
    if (this.closed) throw new AtrBrokerError(codes.BROKER_CLOSED, `The ${this.kind} broker is closed`);
    if (!this.ready) throw this.downError();
    const keys: string[] = [];
    const bodies: string[] = [];
    for (const { channel, body } of items) {
      const wire = this.wireChannel(channel);
      keys.push(historyKeyOf(wire), trimMarkerKeyOf(wire), wire);
      bodies.push(body);
    }
    const { maxLength, maxAgeMs } = this.historyOptions;
    let reply: unknown;
    try {
      reply = await this.runScript(publishManyScript, keys, [String(maxLength), String(maxAgeMs), this.publishCommand, ...bodies]);
    } catch (err) {
      throw new AtrBrokerError(codes.BROKER_PUBLISH, `Publishing ${items.length} events failed: ${(err as Error).message}`, { cause: err });
    }
    const ids = reply as unknown[];
    return items.map(({ channel }, i) => {
      const id = String(ids[i]);
      if (!id.startsWith('!')) return id;
      return new AtrBrokerError(codes.BROKER_PUBLISH, `Publishing on ${channel} failed: ${id.slice(1)}`);
    });
  }

  /** Whether publishMany may put any channels into one script call. */
  protected readonly batches: boolean = false;

  async subscribe(channel: string, listener: MessageListener): Promise<void> {
    if (this.closed) throw new AtrBrokerError(codes.BROKER_CLOSED, `The ${this.kind} broker is closed`);
    if (typeof listener !== 'function') throw new TypeError('subscribe(channel, listener) needs a listener function');
    const known = this.channelListeners.has(channel);
    this.channelListeners.set(channel, listener);
    if (known) return;
    // While down, the channel is subscribed when the connection is back (see resubscribe()).
    if (!this.subscriberReady()) {
      if (!this.started) this.connect().catch(() => undefined); // retries in the background
      return;
    }
    try {
      await this.subscribeOnce(channel);
    } catch (err) {
      if (!this.subscriberReady()) return; // lost meanwhile: resubscribe() will do it
      this.channelListeners.delete(channel);
      throw new AtrBrokerError(codes.BROKER_SUBSCRIBE, `Subscribing to ${channel} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.channelListeners.delete(channel)) return;
    if (!this.subscriberReady()) return;
    try {
      await this.doUnsubscribe(channel);
    } catch (err) {
      this.logger.debug({ err, channel }, 'atr: unsubscribe failed (the connection is gone; nothing is left subscribed)');
    }
  }

  subscriptions(): string[] {
    return [...this.channelListeners.keys()];
  }

  async history(channel: string, afterId: string, limit = 1000): Promise<HistoryPage> {
    if (!this.ready) throw this.downError();
    const wire = this.wireChannel(channel);
    const count = Math.max(1, Math.min(Math.floor(limit) || 1, 10_000));
    let reply: unknown;
    try {
      reply = await this.runScript(historyScript, [historyKeyOf(wire), trimMarkerKeyOf(wire)], [streamIdOfEventId(afterId), String(count), String(this.historyOptions.maxAgeMs)]);
    } catch (err) {
      throw new AtrBrokerError(codes.BROKER_CONNECTION, `Reading the history of ${channel} failed: ${(err as Error).message}`, { cause: err });
    }
    const parts = (reply as unknown[]).map((v) => String(v));
    const exists = parts[0] === '1';
    const after = streamIdOfEventId(afterId);
    // A stream that no longer exists (expired, flushed) cannot prove that nothing was missed,
    // unless the client had seen nothing; a stream that was trimmed past the client's id neither.
    const complete = exists ? compareStreamIds(after, parts[1]!) >= 0 : after === '0-0';
    const messages: string[] = [];
    let lastId = afterId;
    for (let i = 3; i + 1 < parts.length; i += 2) {
      lastId = eventIdOfStreamId(parts[i]!);
      messages.push(composeMessage(lastId, parts[i + 1]!));
    }
    return { messages, complete, lastId };
  }

  async position(channel: string): Promise<string> {
    if (!this.ready) throw this.downError();
    const wire = this.wireChannel(channel);
    const reply = await this.runScript(historyScript, [historyKeyOf(wire), trimMarkerKeyOf(wire)], ['0-0', '1', String(this.historyOptions.maxAgeMs)]);
    const parts = (reply as unknown[]).map((v) => String(v));
    return parts[2] && parts[2] !== '0-0' ? eventIdOfStreamId(parts[2]) : formatEventId(0, 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.channelListeners.clear();
    await this.stop();
    this.wasReady = false;
  }

  /** Subclasses call this with each message of a channel. Malformed messages are logged and dropped. */
  protected deliver(wireChannel: string, message: unknown): void {
    const channel = this.channelOfWire(wireChannel);
    const listener = this.channelListeners.get(channel);
    if (!listener) return;
    // Our script composes every message as {"id":"…",…}: the shape says enough,
    // without parsing each event on the delivery path.
    if (typeof message !== 'string' || !message.startsWith('{"id":"') || !message.endsWith('}')) {
      this.logger.warn({ channel, message: String(message).slice(0, 200) }, 'atr: dropped a malformed message from Redis');
      return;
    }
    try {
      listener(message);
    } catch (err) {
      this.report(new AtrBrokerError(codes.BROKER_MESSAGE, `A listener of ${channel} threw: ${(err as Error).message}`, { cause: err }));
    }
  }

  /**
   * Runs a script with EVALSHA, falling back to EVAL when the server lost it
   * (SCRIPT FLUSH, a restarted node). Publishes are pipelined, so a fallback
   * EVAL would go out after later EVALSHAs, which would then run first: after
   * a NOSCRIPT, new calls wait until every call in flight has finished.
   */
  protected async runScript(script: Script, keys: string[], args: string[]): Promise<unknown> {
    while (this.scriptGate) await this.scriptGate.promise;
    const tail = [String(keys.length), ...keys, ...args];
    this.scriptsInFlight++;
    try {
      return await this.send(keys[0]!, ['EVALSHA', script.sha1, ...tail]);
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      this.scriptGate ??= gate();
      return await this.send(keys[0]!, ['EVAL', script.source, ...tail]);
    } finally {
      if (--this.scriptsInFlight === 0 && this.scriptGate) {
        const opened = this.scriptGate;
        this.scriptGate = undefined;
        opened.open();
      }
    }
  }

  private subscribeOnce(channel: string): Promise<void> {
    let pending = this.subscribing.get(channel);
    if (!pending) {
      pending = this.doSubscribe(channel).finally(() => this.subscribing.delete(channel));
      this.subscribing.set(channel, pending);
    }
    return pending;
  }

  /** Whether SUBSCRIBE can go out now. */
  protected subscriberReady(): boolean {
    return this.ready;
  }

  /**
   * Makes the transport's subscriptions equal to the wanted ones, each
   * channel once: called when the subscriber connection is (again) ready.
   * `current` are the channels the transport holds already (the client may
   * have restored them itself).
   */
  protected async resubscribe(current: Set<string>): Promise<void> {
    const wanted = new Set([...this.channelListeners.keys()].map((c) => this.wireChannel(c)));
    for (const wire of current) {
      if (!wanted.has(wire)) await this.doUnsubscribe(wire).catch(() => undefined);
    }
    for (const channel of this.channelListeners.keys()) {
      if (current.has(this.wireChannel(channel))) continue;
      try {
        await this.subscribeOnce(channel);
      } catch (err) {
        if (!this.subscriberReady()) return; // lost again: the next 'ready' does it
        this.report(new AtrBrokerError(codes.BROKER_SUBSCRIBE, `Resubscribing to ${channel} failed: ${(err as Error).message}`, { cause: err }));
      }
    }
  }

  /** Subclasses call this when their state may have changed. */
  protected updateReadiness(cause?: Error): void {
    const now = this.ready;
    if (now === this.wasReady) return;
    this.wasReady = now;
    if (now) {
      if (this.everReady) {
        this.reconnects++;
        this.logger.info({ broker: this.kind, reconnects: this.reconnects }, 'atr: Redis is back');
        this.emit('reconnect', this.reconnects);
      }
      this.everReady = true;
      this.emit('ready');
    } else if (!this.closed) {
      this.logger.warn({ broker: this.kind, err: cause }, 'atr: Redis connection lost; reconnecting');
      this.emit('down', cause);
    }
  }

  /** A failed connection attempt: counted, logged quietly (an outage logs one warning, not one per try). */
  protected attemptFailed(err?: Error): void {
    this.failedAttempts++;
    this.emit('attempt-failed', err);
    this.logger.debug({ broker: this.kind, err, failedAttempts: this.failedAttempts }, 'atr: Redis connection attempt failed');
  }

  /** Emits 'error' only when someone listens (an unheard 'error' would crash the process). */
  protected report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.logger.error({ err }, `atr: ${err.message}`);
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => { open = resolve; });
  return { promise, open };
}

/** Orders two stream ids (`ms-seq`). */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}
