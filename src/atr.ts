/**
 * One configured atr: its options, its broker, the ordered publishing
 * pipeline and error reporting. `configure()` makes one and sets it as the
 * process-wide default that `Publishable` and `publish()` use; `createAtr()`
 * makes one without touching the default (tests, two apps in one process).
 */
import { EventEmitter } from 'node:events';
import type { Broker } from './brokers/broker';
import { createBroker } from './brokers/create';
import type { AtrOptions, ResolvedOptions } from './config';
import { resolveOptions } from './config';
import type { DataEvent, ModelEvent } from './event';
import { DefaultEventSerializer, stringifyEventBody } from './event';
import { AtrError, AtrSerializeError, codes } from './errors';
import { assertScope, channelOf, eventNameProblem, routingKeyOf } from './routing';

/** Most events one flush takes: what a loop that never yields holds before they go out. */
const BATCH = 64;

/** Longest close() waits for the broker's answers to events already sent. */
const CLOSE_WAIT_MS = 10_000;

/** A broker call that throws instead of rejecting fails its own events only. */
function attempt<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (err) {
    return Promise.reject(err);
  }
}

/** An Error for anything thrown or rejected with (String() itself throws for some values). */
function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  try {
    return new Error(String(value));
  } catch {
    return new Error(Object.prototype.toString.call(value));
  }
}

interface Queued {
  event: ModelEvent | DataEvent;
  /** Absent for events handed in without a promise (enqueueEvent). */
  resolve?(id: string): void;
  reject?(error: unknown): void;
}

/** What became of one event of a batch. */
type Outcome = { id: string; text: string } | { error: unknown };

export interface PublishInput {
  /** The scope, built with scopeKey(): `organization.7`; omit or '' for the root scope. */
  scope?: string;
  /** The event name: `invoice.paid`. */
  name: string;
  /** Any JSON-able value. */
  data?: unknown;
}

/**
 * Events an Atr emits: `queued` (event) when an event is handed in,
 * `published` (event, message) after the broker took it, `dropped` (event,
 * error) when it was lost; `error` is never emitted (errors go to the logger
 * and `onError`).
 */
export class Atr extends EventEmitter {
  readonly options: ResolvedOptions;
  private brokerInstance: Broker | undefined;
  private connecting: Promise<void> | undefined;
  /** The tail of the publish chain: events leave in the order they were handed in. */
  private tail: Promise<unknown> = Promise.resolve();
  /** The tail of the settling chain: batches settle (ids resolve) in hand-in order. */
  private settling: Promise<void> = Promise.resolve();
  /** Events handed in since the last flush. */
  private queue: Queued[] = [];
  private flushTimer: NodeJS.Immediate | undefined;
  /** Batches handed to the broker and not yet answered. */
  private inFlight = 0;
  private pendingCount = 0;
  /** Resolved when pendingCount falls to 0 (close() waits on it). */
  private idle: { promise: Promise<void>; resolve: () => void } | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Things to close with the Atr (hubs, servers), registered by the server side. */
  private readonly closers = new Set<() => Promise<void>>();

  constructor(options: AtrOptions = {}) {
    super();
    this.options = resolveOptions(options);
  }

  /** The broker, created on first use. */
  get broker(): Broker {
    if (!this.brokerInstance) {
      const { history, logger, channelPrefix } = this.options;
      const broker = createBroker(this.options.broker, { history, logger, channelPrefix });
      if (broker.listenerCount('error') === 0) {
        broker.on('error', (err: Error) => this.reportError(err, { where: 'broker' }));
      }
      this.brokerInstance = broker;
    }
    return this.brokerInstance;
  }

  /** Connects the broker (once); later calls share the first attempt, a failed one is retried. */
  connect(): Promise<void> {
    if (!this.connecting) {
      this.connecting = this.broker.connect().catch((err) => {
        this.connecting = undefined;
        throw err;
      });
    }
    return this.connecting;
  }

  channelOf(scope: string): string {
    return channelOf(this.options.channelPrefix, scope);
  }

  /** Events handed in and not yet published (or dropped). */
  get pending(): number {
    return this.pendingCount;
  }

  /**
   * Publishes an event from anywhere. Resolves to the event id; rejects on a
   * wrong name or scope, a serializer that throws, or a broker that fails
   * (the error is reported as well).
   *
   * @example
   * await atr.publish({ scope: scopeKey('organization', 7), name: 'invoice.paid', data: { id: 3 } });
   */
  publish(input: PublishInput): Promise<string> {
    if (input === null || typeof input !== 'object') {
      return Promise.reject(new TypeError('publish() takes { scope, name, data }'));
    }
    const problem = eventNameProblem(input.name);
    if (problem) return Promise.reject(new AtrError(codes.EVENT_NAME, `Invalid event name ${JSON.stringify(input.name)}: ${problem}`));
    const scope = input.scope ?? '';
    try {
      assertScope(scope);
    } catch (err) {
      return Promise.reject(err);
    }
    const event: DataEvent = {
      name: input.name,
      scope,
      routingKey: routingKeyOf(scope, input.name),
      data: input.data ?? null,
      occurredAt: new Date().toISOString(),
    };
    return this.publishEvent(event);
  }

  /**
   * The pipeline every event goes through. Events are queued in hand-in
   * order and leave in batches: once per event-loop turn (setImmediate), or
   * at once when BATCH are waiting. So the write that handed an event in
   * returns before the event is serialized and sent, and that work overlaps
   * the app's next database round trip instead of adding to it; a loop that
   * never yields (synchronous SQLite) still publishes every BATCH events.
   * Resolves to the event id; rejects when the event is lost (the error is
   * reported either way).
   */
  publishEvent(event: ModelEvent | DataEvent): Promise<string> {
    if (this.closed) return Promise.reject(new AtrError(codes.BROKER_CLOSED, 'This atr instance is closed'));
    return new Promise<string>((resolve, reject) => this.enqueue({ event, resolve, reject }));
  }

  /**
   * @internal The same pipeline without a promise to hand back (the model
   * hooks: the write has long returned when its event goes out). A lost
   * event is reported as any is.
   */
  enqueueEvent(event: ModelEvent | DataEvent): void {
    if (this.closed) {
      this.reportError(new AtrError(codes.BROKER_CLOSED, 'This atr instance is closed: the event is dropped'), { where: 'publish', event: event.name, routingKey: event.routingKey });
      return;
    }
    this.enqueue({ event });
  }

  private enqueue(item: Queued): void {
    this.pendingCount++;
    try {
      this.emit('queued', item.event);
    } catch (err) {
      this.reportError(err, { where: 'queued listener', event: item.event.name });
    }
    this.queue.push(item);
    if (this.queue.length >= BATCH) this.flush();
    else if (!this.flushTimer) this.flushTimer = setImmediate(this.flushSoon);
  }

  private succeeded(item: Queued, id: string): void {
    this.settledOne();
    item.resolve?.(id);
  }

  private failed(item: Queued, err: unknown): void {
    this.settledOne();
    const error = toError(err);
    this.reportError(error, { where: 'publish', event: item.event.name, routingKey: item.event.routingKey });
    try {
      this.emit('dropped', item.event, error);
    } catch (listenerError) {
      this.reportError(listenerError, { where: 'dropped listener', event: item.event.name });
    }
    item.reject?.(error);
  }

  private settledOne(): void {
    if (--this.pendingCount === 0 && this.idle) {
      this.idle.resolve();
      this.idle = undefined;
    }
  }

  /** Resolves when no event is pending, or after `ms`. */
  private whenIdle(ms: number): Promise<void> {
    if (this.pendingCount === 0) return Promise.resolve();
    if (!this.idle) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.idle = { promise, resolve };
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    });
    return Promise.race([this.idle.promise, timeout]).finally(() => clearTimeout(timer));
  }

  private readonly flushSoon = (): void => {
    this.flushTimer = undefined;
    this.flush();
  };

  /**
   * Serializes the queued events and hands them to the broker, after the
   * batches before them. While a batch waits for the broker's answer, events
   * gather for the next one (a full BATCH still goes at once, pipelined):
   * a loop of awaited writes that each hand in one event then pays the
   * broker call once per round trip, not once per event. `force`: go even
   * while a batch is out (close()).
   */
  private flush(force = false): void {
    if (this.flushTimer) {
      clearImmediate(this.flushTimer);
      this.flushTimer = undefined;
    }
    const batch = this.queue;
    if (batch.length === 0) return;
    if (this.inFlight > 0 && batch.length < BATCH && !force) return; // answered() flushes
    this.queue = [];
    this.inFlight++;
    // Serializing starts now; an async serializer may be slow or fail before
    // the chain reaches its batch: that is handled below, in order.
    const bodies = batch.map((item) => this.serialize(item.event));
    const pending = bodies.filter((body): body is Promise<string> => typeof body !== 'string');
    for (const body of pending) body.catch(() => undefined);
    // The chain waits for each batch's bodies and for its broker call to be
    // issued, not for the broker's answer: a broker keeps the order of the
    // commands it was given, so batches may pipeline.
    const issued = this.tail.then(async () => {
      const texts = pending.length === 0 ? (bodies as string[]) : await Promise.allSettled(bodies);
      if (!this.brokerInstance?.ready) await this.connect();
      // Wrapped: a promise returned as it is would make the chain wait for the answer.
      return { outcomes: this.issue(batch, texts) };
    });
    this.tail = issued.catch(() => undefined);
    // Each batch settles after the one before it: a full batch sent while a
    // smaller one is out may be answered in the same read (or, across
    // connections, first), and its ids must not resolve before the earlier ones.
    const answer = issued.then(({ outcomes }) => outcomes).catch((error: unknown) => batch.map((): Outcome => ({ error })));
    this.settling = this.settling
      .then(() => answer)
      .then((results) => this.settle(batch, results))
      .catch((err: unknown) => this.reportError(err, { where: 'publish' }));
  }

  /** Settles one batch's events in order, then lets what gathered meanwhile go (never throws). */
  private settle(batch: Queued[], results: Outcome[]): void {
    try {
      for (let i = 0; i < batch.length; i++) {
        const item = batch[i]!;
        const result = results[i] ?? { error: new AtrError(codes.BROKER_PUBLISH, 'The broker gave no answer for this event') };
        if ('error' in result) {
          this.failed(item, result.error);
          continue;
        }
        try {
          item.event.id = result.id;
          this.emit('published', item.event, result.text);
        } catch (err) {
          // The event went out: a listener's bug is reported, not a lost event.
          this.reportError(err, { where: 'published listener', event: item.event.name });
        }
        this.succeeded(item, result.id);
      }
    } finally {
      this.answered();
    }
  }

  /**
   * Hands one batch to the broker: one publishMany call where the broker has
   * it, else a publish per event. Resolves, once the broker answered, to an
   * id or an error per event (never rejects).
   */
  private issue(batch: Queued[], texts: Array<PromiseSettledResult<string> | string>): Promise<Outcome[]> {
    const results: Outcome[] = new Array(batch.length);
    const ready: Array<{ index: number; channel: string; body: string }> = [];
    texts.forEach((text, index) => {
      if (typeof text !== 'string' && text.status === 'rejected') results[index] = { error: text.reason };
      else ready.push({ index, channel: this.channelOf(batch[index]!.event.scope), body: typeof text === 'string' ? text : text.value });
    });
    if (ready.length === 0) return Promise.resolve(results);
    const broker = this.broker;
    if (broker.publishMany && ready.length > 1) {
      return attempt(() => broker.publishMany!(ready)).then(
        (ids) => {
          ready.forEach(({ index }, k) => {
            const id: unknown = Array.isArray(ids) ? ids[k] : undefined;
            results[index] =
              id instanceof Error ? { error: id }
              : id === undefined || id === null ? { error: new AtrError(codes.BROKER_PUBLISH, 'The broker gave no id for this event') }
              : { id: String(id), text: ready[k]!.body };
          });
          return results;
        },
        (error: unknown) => {
          for (const { index } of ready) results[index] = { error };
          return results;
        },
      );
    }
    return Promise.all(
      ready.map(({ index, channel, body }) =>
        attempt(() => broker.publish(channel, body)).then(
          (id) => void (results[index] = { id: String(id), text: body }),
          (error: unknown) => void (results[index] = { error }),
        ),
      ),
    ).then(() => results);
  }

  /** A batch has its answers: what gathered meanwhile goes now. */
  private answered(): void {
    this.inFlight--;
    if (this.queue.length > 0 && !this.flushTimer) this.flush();
  }

  /** The id of the last event of a scope: hand it to a client so it subscribes from there. */
  async position(scope: string): Promise<string> {
    assertScope(scope);
    await this.connect();
    return this.broker.position(this.channelOf(scope));
  }

  /** Reports an error to the logger and the onError hook; never throws. */
  reportError(error: unknown, context: Record<string, unknown> = {}): void {
    const err = toError(error);
    try {
      this.options.logger.error({ err, ...context }, `atr: ${typeof context.where === 'string' ? context.where : 'error'}`);
    } catch {
      // a broken logger must not break the caller
    }
    try {
      this.options.onError?.(err, context);
    } catch {
      // nor a broken hook
    }
  }

  /** @internal Registers something to close with this Atr. */
  onClose(closer: () => Promise<void>): () => void {
    this.closers.add(closer);
    return () => this.closers.delete(closer);
  }

  /** Waits for pending publishes, closes servers and the broker. A second call shares the first. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    if (this.closed) return;
    // Events handed in while the last batches go out go out too, and the
    // broker's answers are awaited (bounded: a hung broker must not hold
    // close() for ever), so that what went out is not reported lost.
    do {
      this.flush(true);
      await this.tail;
    } while (this.queue.length > 0);
    await this.whenIdle(CLOSE_WAIT_MS);
    this.closed = true;
    for (const closer of [...this.closers]) {
      try {
        await closer();
      } catch (err) {
        this.reportError(err, { where: 'close' });
      }
    }
    this.closers.clear();
    if (this.brokerInstance) await this.brokerInstance.close();
  }

  /** The event's JSON body; a promise only when the serializer returns one (or throws in it). */
  private serialize(event: ModelEvent | DataEvent): string | Promise<string> {
    const Serializer = this.options.eventSerializer ?? DefaultEventSerializer;
    let json: unknown;
    try {
      json = new Serializer(event).toJSON();
    } catch (err) {
      return Promise.reject(this.serializerError(event, err));
    }
    if (json !== null && typeof json === 'object' && typeof (json as { then?: unknown }).then === 'function') {
      return Promise.resolve(json).then(
        (value) => this.bodyOf(value),
        (err: unknown) => Promise.reject(this.serializerError(event, err)),
      );
    }
    try {
      return this.bodyOf(json);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private serializerError(event: ModelEvent | DataEvent, err: unknown): AtrSerializeError {
    return new AtrSerializeError(codes.SERIALIZE, `The event serializer threw for ${event.routingKey}: ${(err as Error).message}`, { cause: err });
  }

  private bodyOf(json: unknown): string {
    if (json !== null && typeof json === 'object' && 'id' in json) {
      // The broker owns the id (it is the position in the history).
      const { id: _ignored, ...rest } = json as Record<string, unknown>;
      json = rest;
    }
    return stringifyEventBody(json);
  }
}

let defaultAtr: Atr | undefined;

/**
 * Validates the options, returns a new Atr and makes it the process-wide
 * default (used by Publishable models and `publish()`).
 *
 * @example
 * const atr = configure({ broker: process.env.REDIS_URL, authenticateWith: TokenAuthenticator, scopeWith: OrganizationScope });
 */
export function configure(options: AtrOptions = {}): Atr {
  const atr = new Atr(options);
  defaultAtr = atr;
  return atr;
}

/** A new Atr that is not the process-wide default. */
export function createAtr(options: AtrOptions = {}): Atr {
  return new Atr(options);
}

/** The process-wide Atr set by configure(); throws if there is none. */
export function getAtr(): Atr {
  if (!defaultAtr) {
    throw new AtrError(codes.NOT_CONFIGURED, 'atr is not configured: call configure({ ... }) before publishing');
  }
  return defaultAtr;
}

/** @internal For tests: forget the default. */
export function resetDefaultAtr(): void {
  defaultAtr = undefined;
}

/**
 * Publishes an event through the default Atr.
 *
 * @example
 * await publish({ scope: 'organization.7', name: 'invoice.paid', data: { id: 3 } });
 */
export function publish(input: PublishInput): Promise<string> {
  return getAtr().publish(input);
}
