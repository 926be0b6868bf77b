/**
 * The hub: one per Atr (so one per process, usually). It knows which
 * reactors listen on which channel and holds one broker subscription per
 * channel, shared by all of them, dropped when the last one leaves.
 *
 * Subscribing and unsubscribing take time (a Redis round trip), and sockets
 * come and go meanwhile. Each channel is a small state machine that runs one
 * broker call at a time and, when the call returns, compares what it has with
 * what it wants (any reactors?), so that after any interleaving of joins and
 * leaves the broker holds exactly the channels that have open sockets, each
 * once, and an event is delivered once.
 *
 * Broker reconnects: a broker that lost its connection emits `down`, and
 * `ready` once it is back; by the broker contract it resubscribes its own
 * subscriptions itself, so the hub does nothing on either event.
 */
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import type { Atr } from '../atr';
import type { FrameBatch } from './fast-send';
import { TickBatcher, fastPath } from './fast-send';
import { Reactor } from './reactor';
import type { Resume } from './admission';
import { clientError } from './client-messages';
import { codes } from '../errors';

/** Counters and gauges of one hub, read by /metrics. A plain object, updated in place. */
export interface HubMetrics {
  /** Open connections (gauge). */
  connections: number;
  /** Channels with at least one connection (gauge). */
  channels: number;
  /** Upgrade requests whose checks are running (gauge). */
  handshakesPending: number;
  /** Messages received from the broker. */
  eventsReceived: number;
  /** Messages written to sockets. */
  deliveries: number;
  /** Messages not written (socket closing or too slow). */
  deliveriesDropped: number;
  /** Connections closed with 1013 because they did not read fast enough. */
  slowClientsClosed: number;
  /** Requests refused (HTTP status before the upgrade, or close code after it). */
  refused: number;
  /** Connections terminated because they stopped answering pings. */
  heartbeatTimeouts: number;
  /** Connections closed with 1008 for sending too many messages. */
  rateLimited: number;
  /** Malformed or unknown client messages, and protocol errors. */
  clientErrors: number;
  /** Broker subscriptions that failed (their connections were closed with 1011). */
  subscribeFailures: number;
  /** Events sent from the history to clients that resumed. */
  replayed: number;
}

interface ChannelEntry {
  readonly channel: string;
  readonly reactors: Set<Reactor>;
  /** What the broker holds, as far as the hub knows. */
  subscribed: boolean;
  /** A broker call for this channel is in flight. */
  busy: boolean;
  /** Joins waiting for the subscription. */
  waiters: Array<(err?: Error) => void>;
}

export class Hub {
  readonly metrics: HubMetrics = {
    connections: 0, channels: 0, handshakesPending: 0, eventsReceived: 0, deliveries: 0, deliveriesDropped: 0,
    slowClientsClosed: 0, refused: 0, heartbeatTimeouts: 0, rateLimited: 0, clientErrors: 0, subscribeFailures: 0, replayed: 0,
  };
  /** Upgrades without a server of their own: atr's checks run first, then this completes the handshake. */
  readonly wss: WebSocketServer;
  /** Connections whose checks are running (raw sockets, or sockets express-ws upgraded); destroyed on close. */
  readonly handshakes = new Set<{ destroy(): void }>();
  private readonly reactors = new Set<Reactor>();
  private readonly entries = new Map<string, ChannelEntry>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];
  private closing: Promise<void> | undefined;
  private readonly batcher = new TickBatcher((channel, batch) => this.deliverBatch(channel, batch));

  constructor(readonly atr: Atr) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: atr.options.maxPayload,
    });
  }

  /** true once close() was called: new connections are refused. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** The reactors of open connections. */
  get size(): number {
    return this.reactors.size;
  }

  /** The channels the hub wants subscribed now (those with connections). */
  channelNames(): string[] {
    return [...this.entries.values()].filter((e) => e.reactors.size > 0).map((e) => e.channel);
  }

  /**
   * Takes an admitted, upgraded socket: makes its reactor, joins its
   * channels, and sends `atr.ready` once every channel is subscribed (events
   * published after the client saw `atr.ready` reach it).
   */
  accept(socket: WebSocket, scopes: string[], user: unknown, resume?: Resume): Reactor {
    const reactor = new Reactor(this, { socket, scopes, user });
    if (this.closed) {
      reactor.close(1001, 'server closing');
      return reactor;
    }
    this.reactors.add(reactor);
    this.metrics.connections = this.reactors.size;
    this.startSweep();
    // Gates go up before the joins: live messages of a resumed scope are held
    // from the first one on, until its history has been sent.
    if (resume && resume.positions.size > 0) reactor.holdLive(resume.positions);
    Promise.all(reactor.channels.map((channel) => this.join(channel, reactor))).then(
      () => {
        reactor.send(JSON.stringify({ name: 'atr.ready', scopes: reactor.scopes }));
        if (resume?.problem) reactor.send(clientError(resume.problem, codes.CLIENT_RESUME));
        if (resume && resume.positions.size > 0) reactor.replayHeld(resume.positions);
      },
      () => { reactor.close(1011, 'subscribe failed'); },
    );
    return reactor;
  }

  /** Takes a reactor off its channels; the last one off a channel unsubscribes it. Idempotent. */
  remove(reactor: Reactor): void {
    if (!this.reactors.delete(reactor)) return;
    this.metrics.connections = this.reactors.size;
    for (const channel of reactor.channels) {
      const entry = this.entries.get(channel);
      if (entry && entry.reactors.delete(reactor) && entry.reactors.size === 0) {
        this.metrics.channels--;
        this.sync(entry);
      }
    }
    if (this.reactors.size === 0) this.stopSweep();
  }

  /**
   * A message from the broker: to every reactor of the channel, the same
   * string. With the fast path, the channel's messages of this turn go out
   * together at its end, as frames built once (fast-send.ts).
   */
  private receive(channel: string, message: string): void {
    this.metrics.eventsReceived++;
    const entry = this.entries.get(channel);
    if (!entry) return;
    if (fastPath.enabled) {
      this.batcher.add(channel, message);
      return;
    }
    for (const reactor of entry.reactors) reactor.receive(channel, message);
  }

  private deliverBatch(channel: string, batch: FrameBatch): void {
    const entry = this.entries.get(channel);
    if (!entry) return;
    for (const reactor of entry.reactors) reactor.deliverBatch(channel, batch);
  }

  private join(channel: string, reactor: Reactor): Promise<void> {
    let entry = this.entries.get(channel);
    if (!entry) {
      entry = { channel, reactors: new Set(), subscribed: false, busy: false, waiters: [] };
      this.entries.set(channel, entry);
    }
    if (entry.reactors.size === 0) this.metrics.channels++;
    entry.reactors.add(reactor);
    if (entry.subscribed && !entry.busy) return Promise.resolve();
    const target = entry;
    return new Promise((resolve, reject) => {
      target.waiters.push((err) => (err ? reject(err) : resolve()));
      this.sync(target);
    });
  }

  /** Brings the broker in line with the channel's reactors, one broker call at a time. */
  private sync(entry: ChannelEntry): void {
    if (entry.busy) return;
    const want = entry.reactors.size > 0 && !this.closed;
    if (want === entry.subscribed) {
      this.settle(entry);
      if (!want && this.entries.get(entry.channel) === entry) {
        this.entries.delete(entry.channel);
        if (this.entries.size === 0) this.notifyIdle();
      }
      return;
    }
    entry.busy = true;
    const call = want ? this.subscribe(entry.channel) : this.atr.broker.unsubscribe(entry.channel);
    call.then(
      () => { entry.subscribed = want; },
      (err: unknown) => {
        // A failed unsubscribe counts as gone: a later subscribe replaces the
        // broker's listener, and the listener ignores channels without reactors.
        entry.subscribed = false;
        this.atr.reportError(err, { where: want ? 'subscribe' : 'unsubscribe', channel: entry.channel });
        if (want) {
          this.metrics.subscribeFailures++;
          // Close them now, before the next sync, so that a broker that keeps
          // failing is not asked again and again; the clients reconnect.
          for (const reactor of [...entry.reactors]) reactor.close(1011, 'subscribe failed');
          this.settle(entry, err instanceof Error ? err : new Error(String(err)));
        }
      },
    ).finally(() => {
      entry.busy = false;
      this.sync(entry);
    });
  }

  private async subscribe(channel: string): Promise<void> {
    await this.atr.connect();
    await this.atr.broker.subscribe(channel, (message) => this.receive(channel, message));
  }

  private settle(entry: ChannelEntry, err?: Error): void {
    const waiters = entry.waiters;
    if (waiters.length === 0) return;
    entry.waiters = [];
    for (const done of waiters) done(err);
  }

  private startSweep(): void {
    if (this.sweepTimer) return;
    // One timer for all connections: ping the live ones, terminate those
    // that did not answer the previous ping (silent for up to two intervals).
    this.sweepTimer = setInterval(() => {
      for (const reactor of this.reactors) reactor.heartbeat();
    }, this.atr.options.heartbeatInterval);
    this.sweepTimer.unref();
  }

  private stopSweep(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const done of waiters) done();
  }

  /** Resolves when no channel is subscribed or being (un)subscribed. */
  private whenIdle(): Promise<void> {
    if (this.entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Closes every connection with 1001, refuses new ones, drops the broker
   * subscriptions and the timers. Resolves when the sockets are closed.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    for (const socket of this.handshakes) socket.destroy();
    this.handshakes.clear();
    this.metrics.handshakesPending = 0;
    const closed: Promise<void>[] = [];
    for (const reactor of [...this.reactors]) {
      if (reactor.socket.readyState !== 3) {
        closed.push(new Promise((resolve) => reactor.socket.once('close', () => resolve())));
      }
      reactor.close(1001, 'server closing');
    }
    this.stopSweep();
    for (const entry of [...this.entries.values()]) this.sync(entry);
    await Promise.all([...closed, this.whenIdle()]);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

const hubs = new WeakMap<Atr, Hub>();

/**
 * The hub of an Atr, created on first use and closed with it. Its `metrics`
 * feed /metrics; its `close()` closes every socket with 1001.
 *
 * @example
 * const hub = getHub(atr);
 * console.log(hub.metrics.connections, hub.metrics.channels);
 */
export function getHub(atr: Atr): Hub {
  let hub = hubs.get(atr);
  if (!hub) {
    const created = new Hub(atr);
    atr.onClose(() => created.close());
    hubs.set(atr, created);
    hub = created;
  }
  return hub;
}
