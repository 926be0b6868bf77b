/**
 * The in-process broker: the default, for one process and for tests. Delivery
 * is asynchronous (a microtask later), as it would be through a real broker,
 * so that code written against it behaves the same on Redis.
 */
import { EventEmitter } from 'node:events';
import type { Broker, HistoryOptions, HistoryPage, MessageListener } from './broker';
import { composeMessage, compareEventIds, formatEventId, parseEventId } from '../event';
import { AtrBrokerError, codes } from '../errors';

interface Entry {
  id: string;
  at: number;
  message: string;
}

interface ChannelHistory {
  entries: Entry[];
  lastMs: number;
  lastSeq: number;
  /** The id of the newest entry ever trimmed: a client at or before it missed something. */
  trimmedThrough: string | undefined;
}

export const DEFAULT_HISTORY: HistoryOptions = { maxLength: 1000, maxAgeMs: 24 * 60 * 60 * 1000 };

export class MemoryBroker extends EventEmitter implements Broker {
  readonly kind = 'memory';
  private readonly channelListeners = new Map<string, MessageListener>();
  private readonly histories = new Map<string, ChannelHistory>();
  private closed = false;
  private readonly historyOptions: HistoryOptions;
  /** Ids from before this broker existed come from another process's memory: it cannot vouch for what followed them. */
  private readonly bornAt = Date.now();

  /** Trims every channel by age now and then, so scopes nobody publishes to any more do not hold their history for ever. */
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: { history?: Partial<HistoryOptions>; sweepInterval?: number } = {}) {
    super();
    this.historyOptions = { ...DEFAULT_HISTORY, ...options.history };
    const every = options.sweepInterval ?? Math.min(60_000, this.historyOptions.maxAgeMs);
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  /** Trims each channel's history by age; a channel left empty keeps only its "trimmed through" mark. */
  sweep(now = Date.now()): void {
    for (const history of this.histories.values()) this.trim(history, now);
  }

  /** Events held in all histories (memory stays within historyMaxLength × scopes published to within historyMaxAge). */
  get historySize(): number {
    let total = 0;
    for (const history of this.histories.values()) total += history.entries.length;
    return total;
  }

  get ready(): boolean {
    return !this.closed;
  }

  async connect(): Promise<void> {
    if (this.closed) throw new AtrBrokerError(codes.BROKER_CLOSED, 'The memory broker is closed');
  }

  async publishMany(items: Array<{ channel: string; body: string }>): Promise<Array<string | Error>> {
    return Promise.all(items.map(({ channel, body }) => this.publish(channel, body).catch((err: Error) => err)));
  }

  async publish(channel: string, body: string): Promise<string> {
    if (this.closed) throw new AtrBrokerError(codes.BROKER_CLOSED, 'The memory broker is closed');
    const history = this.historyOf(channel);
    const now = Date.now();
    if (now > history.lastMs) {
      history.lastMs = now;
      history.lastSeq = 0;
    } else {
      history.lastSeq += 1;
    }
    const id = formatEventId(history.lastMs, history.lastSeq);
    const message = composeMessage(id, body);
    history.entries.push({ id, at: now, message });
    this.trim(history, now);
    // Deliver after the current job, like a network broker would, but in publish order.
    queueMicrotask(() => this.channelListeners.get(channel)?.(message));
    return id;
  }

  async subscribe(channel: string, listener: MessageListener): Promise<void> {
    if (this.closed) throw new AtrBrokerError(codes.BROKER_CLOSED, 'The memory broker is closed');
    this.channelListeners.set(channel, listener);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.channelListeners.delete(channel);
  }

  subscriptions(): string[] {
    return [...this.channelListeners.keys()];
  }

  async history(channel: string, afterId: string, limit = 1000): Promise<HistoryPage> {
    const zero = formatEventId(0, 0);
    const foreign = afterId !== zero && (parseEventId(afterId)?.[0] ?? 0) < this.bornAt;
    const history = this.histories.get(channel);
    if (!history) return { messages: [], complete: !foreign, lastId: afterId };
    this.trim(history, Date.now());
    const complete = !foreign && (history.trimmedThrough === undefined || compareEventIds(afterId, history.trimmedThrough) >= 0);
    const messages: string[] = [];
    let lastId = afterId;
    for (const entry of history.entries) {
      if (compareEventIds(entry.id, afterId) <= 0) continue;
      if (messages.length >= limit) break;
      messages.push(entry.message);
      lastId = entry.id;
    }
    return { messages, complete, lastId };
  }

  async position(channel: string): Promise<string> {
    const history = this.histories.get(channel);
    const last = history?.entries[history.entries.length - 1];
    if (last) return last.id;
    if (history?.trimmedThrough) return history.trimmedThrough;
    return formatEventId(0, 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.channelListeners.clear();
    this.histories.clear();
  }

  private historyOf(channel: string): ChannelHistory {
    let history = this.histories.get(channel);
    if (!history) {
      history = { entries: [], lastMs: 0, lastSeq: 0, trimmedThrough: undefined };
      this.histories.set(channel, history);
    }
    return history;
  }

  private trim(history: ChannelHistory, now: number): void {
    const { maxLength, maxAgeMs } = this.historyOptions;
    let drop = Math.max(0, history.entries.length - maxLength);
    while (drop < history.entries.length && now - history.entries[drop]!.at > maxAgeMs) drop++;
    if (drop > 0) {
      history.trimmedThrough = history.entries[drop - 1]!.id;
      history.entries.splice(0, drop);
    }
  }
}
