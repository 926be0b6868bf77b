/**
 * A reactor owns one websocket connection: it writes the events of its
 * scopes to it, answers the client's messages, and cuts the connection off
 * when the client is too slow, too chatty or silent. Whatever happens to one
 * reactor never reaches another: every failure ends in closing this socket.
 */
import type { RawData, WebSocket } from 'ws';
import { codes } from '../errors';
import type { ClientMessage } from './client-messages';
import { clientError, clientMessageHandlers, parseClientMessage } from './client-messages';
import type { FrameBatch } from './fast-send';
import { writeFrames } from './fast-send';
import type { Hub } from './hub';
import { ReplayGate } from './replay';

/** How long a closing socket may take to finish the close handshake before it is destroyed. */
export const CLOSE_GRACE_MS = 1000;

const OPEN = 1;
const CLOSED = 3;

export interface ReactorInit {
  socket: WebSocket;
  /** The scopes the admission granted: `organization.7`. */
  scopes: string[];
  /** What the authenticator established. */
  user: unknown;
}

export class Reactor {
  readonly socket: WebSocket;
  readonly scopes: readonly string[];
  /** The broker channel of each scope, in the same order. */
  readonly channels: readonly string[];
  readonly user: unknown;
  /** Cleared when a ping goes out, set by any sign of life; still clear at the next sweep: terminated. */
  alive = true;
  /** Channel → gate, for the scopes being resumed (their live messages wait for the replay); undefined when none. */
  private gates: Map<string, ReplayGate> | undefined;
  /** Set when the reactor left the hub: nothing more is sent. */
  private left = false;
  private tokens: number;
  private refilledAt = Date.now();
  private killTimer: NodeJS.Timeout | undefined;

  constructor(
    /** The hub it belongs to (its atr, broker and metrics, for client message handlers). */
    readonly hub: Hub,
    init: ReactorInit,
  ) {
    this.socket = init.socket;
    this.scopes = init.scopes;
    this.channels = init.scopes.map((scope) => hub.atr.channelOf(scope));
    this.user = init.user;
    this.tokens = hub.atr.options.maxClientMessagesPerSecond;
    this.socket.on('message', (data, isBinary) => this.onClientFrame(data, isBinary));
    this.socket.on('pong', () => { this.alive = true; });
    this.socket.on('close', () => this.onClosed());
    // Protocol errors (a frame over maxPayload, bad UTF-8, ...): ws closes
    // the socket itself with the right code (1009, 1007, 1002).
    this.socket.on('error', (err: Error & { code?: string }) => {
      this.hub.metrics.clientErrors++;
      this.hub.atr.options.logger.debug({ err, code: err.code }, 'atr: websocket client error');
    });
  }

  /** true while messages can be written. */
  get open(): boolean {
    return !this.left && this.socket.readyState === OPEN;
  }

  /**
   * Delivers one broker message: the same string for every reactor of the
   * channel, written as is. This is the delivery fast path; keep it small.
   */
  deliver(message: string): boolean {
    if (this.send(message)) {
      this.hub.metrics.deliveries++;
      return true;
    }
    this.hub.metrics.deliveriesDropped++;
    return false;
  }

  /** A live message of one of its channels (fast path off): through the channel's replay gate while it has one. */
  receive(channel: string, message: string): void {
    const gate = this.gates?.get(channel);
    if (gate) this.throughGate(channel, gate, [message]);
    else this.deliver(message);
  }

  /**
   * Delivers what one channel received in one turn (fast-send.ts): the
   * frames, built once for every socket, in one write when the socket
   * allows it; otherwise message by message through deliver(). A channel
   * being resumed sends each message through its replay gate instead.
   */
  deliverBatch(channel: string, batch: FrameBatch): void {
    const gate = this.gates?.get(channel);
    if (gate) {
      this.throughGate(channel, gate, batch.messages);
      return;
    }
    if (this.open) {
      const queued = this.socket.bufferedAmount;
      const bytes = batch.bytes;
      if (!(queued > 0 && queued + bytes.length > this.hub.atr.options.maxBufferedBytes)) {
        let written = false;
        try {
          written = writeFrames(this.socket, bytes);
        } catch (err) {
          this.hub.atr.reportError(err, { where: 'send', code: codes.SERVER_SEND });
          this.terminate();
        }
        if (written) {
          this.hub.metrics.deliveries += batch.messages.length;
          return;
        }
      }
    }
    for (const message of batch.messages) this.deliver(message);
  }

  private throughGate(channel: string, gate: ReplayGate, messages: readonly string[]): void {
    for (const message of messages) gate.deliver(message);
    if (gate.done) this.retireGate(channel);
  }

  private retireGate(channel: string): void {
    this.gates?.delete(channel);
    if (this.gates?.size === 0) this.gates = undefined;
  }

  /** Holds the live messages of each resumed scope (scope → the client's last id) until replayHeld() sent its history. */
  holdLive(positions: ReadonlyMap<string, string>): void {
    const limit = this.hub.atr.options.maxBufferedBytes;
    this.scopes.forEach((scope, i) => {
      if (!positions.has(scope)) return;
      const gate = new ReplayGate(
        (message) => { this.deliver(message); },
        // More arrived during the replay than a slow client may have queued: let it come back and resume again.
        () => { this.hub.metrics.slowClientsClosed++; this.close(1013, 'too far behind'); },
        limit,
      );
      (this.gates ??= new Map()).set(this.channels[i]!, gate);
    });
  }

  /**
   * Sends each resumed scope's missed events, oldest first, then opens its
   * gate; a scope whose history no longer reaches back gets `atr.reset` (the
   * app refetches) with the position to go on from.
   */
  replayHeld(positions: ReadonlyMap<string, string>): void {
    const broker = this.hub.atr.broker;
    this.scopes.forEach((scope, i) => {
      const channel = this.channels[i]!;
      const gate = this.gates?.get(channel);
      const afterId = positions.get(scope);
      if (!gate || afterId === undefined) return;
      gate.replay(broker, channel, afterId).then(
        (outcome) => {
          if (outcome.kind === 'reset') this.send(JSON.stringify({ name: 'atr.reset', scope, position: outcome.position }));
          else this.hub.metrics.replayed += outcome.count;
        },
        (err: unknown) => {
          // The history could not be read (the broker is down): the client
          // may have missed events, so it must refetch; live goes on.
          this.hub.atr.reportError(err, { where: 'resume', scope });
          gate.open(afterId);
          this.send(JSON.stringify({ name: 'atr.reset', scope, position: afterId }));
        },
      ).finally(() => {
        // The gate stays until a live message newer than the replay passed it (see ReplayGate).
        if (gate.done) this.retireGate(channel);
      });
    });
  }

  /**
   * Writes a text frame unless the client is too slow: when the bytes queued
   * for it would pass `maxBufferedBytes`, it is closed with 1013 instead, so
   * that memory stays bounded and nobody else waits for it. A lone message
   * to an idle client always goes out, however large.
   */
  send(text: string): boolean {
    if (!this.open) return false;
    const queued = this.socket.bufferedAmount;
    if (queued > 0 && queued + text.length > this.hub.atr.options.maxBufferedBytes) {
      this.hub.metrics.slowClientsClosed++;
      this.close(1013, 'too slow');
      return false;
    }
    try {
      this.socket.send(text);
      return true;
    } catch (err) {
      this.hub.atr.reportError(err, { where: 'send', code: codes.SERVER_SEND });
      this.terminate();
      return false;
    }
  }

  /** Called by the hub's heartbeat sweep, once an interval. */
  heartbeat(): void {
    if (this.left) return;
    if (!this.alive) {
      this.hub.metrics.heartbeatTimeouts++;
      this.terminate();
      return;
    }
    this.alive = false;
    try {
      this.socket.ping();
    } catch {
      this.terminate();
    }
  }

  /**
   * Closes with a code and leaves the hub at once. If the close frame cannot
   * get through (a client that does not read), the socket is destroyed after
   * a short grace.
   */
  close(code: number, reason = ''): void {
    if (this.killTimer) return;
    this.leave();
    if (this.socket.readyState === CLOSED) return;
    try {
      this.socket.close(code, reason);
    } catch {
      this.socket.terminate();
      return;
    }
    this.killTimer = setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS);
    this.killTimer.unref();
  }

  /** Destroys the connection without a close handshake. */
  terminate(): void {
    this.leave();
    this.socket.terminate();
  }

  private leave(): void {
    if (this.left) return;
    this.left = true;
    this.hub.remove(this);
  }

  private onClosed(): void {
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = undefined;
    this.leave();
  }

  private onClientFrame(data: RawData, isBinary: boolean): void {
    this.alive = true;
    if (this.left) return;
    if (!this.takeToken()) {
      this.hub.metrics.rateLimited++;
      this.close(1008, 'too many messages');
      return;
    }
    const message = parseClientMessage(data, isBinary);
    if (typeof message === 'string') {
      this.hub.metrics.clientErrors++;
      this.send(clientError(message));
      return;
    }
    this.dispatch(message);
  }

  private dispatch(message: ClientMessage): void {
    const handler = clientMessageHandlers.get(message.type);
    if (!handler) {
      this.hub.metrics.clientErrors++;
      this.send(clientError(`unknown message type ${JSON.stringify(message.type.slice(0, 40))}`));
      return;
    }
    try {
      const result = handler(this, message);
      if (result && typeof result.then === 'function') {
        result.then(undefined, (err: unknown) => this.handlerFailed(message.type, err));
      }
    } catch (err) {
      this.handlerFailed(message.type, err);
    }
  }

  private handlerFailed(type: string, err: unknown): void {
    this.hub.atr.reportError(err, { where: 'client message', type });
    this.close(1011, 'internal error');
  }

  /** Token bucket: `maxClientMessagesPerSecond` a second, bursts up to one second's worth. */
  private takeToken(): boolean {
    const rate = this.hub.atr.options.maxClientMessagesPerSecond;
    const now = Date.now();
    this.tokens = Math.min(rate, this.tokens + ((now - this.refilledAt) * rate) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
