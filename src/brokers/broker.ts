/**
 * The contract every broker implements. A broker moves messages of one
 * channel (one scope) from publishers to the hubs of every process, and keeps
 * a bounded history of each channel so that a client can resume.
 *
 * The hub holds at most one subscription per channel per process; a broker
 * need not count listeners.
 */
import type { EventEmitter } from 'node:events';

export type MessageListener = (message: string) => void;

export interface HistoryOptions {
  /** Most events kept per scope. */
  maxLength: number;
  /** Oldest event kept, in milliseconds. */
  maxAgeMs: number;
}

export interface HistoryPage {
  /** Messages after the given id, oldest first, as they were delivered live. */
  messages: string[];
  /** false when the history no longer reaches back to the given id (the client must refetch). */
  complete: boolean;
  /** The id of the last message in the page, or the id asked for when the page is empty. */
  lastId: string;
}

/**
 * Events: `ready` (connected and subscribed; again after each reconnect),
 * `down` (lost the connection; it keeps trying), `error` (an Error, reported, never thrown).
 */
export interface Broker extends EventEmitter {
  /** `memory`, `redis`, `redis-cluster`. */
  readonly kind: string;
  /** true while publish and delivery work. */
  readonly ready: boolean;
  /** Connects; resolves when ready. Called by atr before first use; safe to call twice. */
  connect(): Promise<void>;
  /**
   * Publishes `body` (a JSON object text without `id`) on `channel`; resolves
   * to the id it was given. The delivered message is composeMessage(id, body).
   * It must settle in bounded time (the Redis brokers time out): while a call
   * is unanswered, atr gathers the next events behind it and resolves ids in
   * order, so a call that never settles holds the events after it.
   */
  publish(channel: string, body: string): Promise<string>;
  /**
   * Optional: publishes several events in one call, in order, with what
   * `publish` would give for each: its id, or the Error that lost it. Rejects
   * only when none went out. atr uses it for events handed in together.
   */
  publishMany?(items: Array<{ channel: string; body: string }>): Promise<Array<string | Error>>;
  /** Starts delivering the channel's messages to `listener` (one per channel). */
  subscribe(channel: string, listener: MessageListener): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** The channels subscribed now. */
  subscriptions(): string[];
  /** The messages of `channel` after `afterId`, at most `limit`. */
  history(channel: string, afterId: string, limit?: number): Promise<HistoryPage>;
  /** The id of the channel's last message ('0-000000' when none). */
  position(channel: string): Promise<string>;
  close(): Promise<void>;
}
