/**
 * The delivery fast path. A broker message goes to every socket of its
 * channel as the same bytes, so the websocket frame is built once per
 * message (not once per socket, as `ws.send` does), and the messages one
 * channel receives within one turn of the event loop are joined into one
 * buffer that each socket gets in one write. Work stays proportional to the
 * listeners of the channel that received the message.
 *
 * The bytes go straight to the socket under `ws` only when `ws` would have
 * written exactly them: the connection is open, uses no per-message
 * compression, and `ws` has nothing of its own queued. Otherwise the caller
 * sends message by message through `ws.send`. Bytes written here count in
 * `ws.bufferedAmount` (it reads the socket's buffer), so the slow-client
 * bound still sees them.
 */
import type { WebSocket } from 'ws';

/** What one channel received within one turn: its messages and their frames, joined. */
export interface FrameBatch {
  readonly messages: readonly string[];
  /** Every message as an unmasked text frame, one after the other. */
  readonly bytes: Buffer;
}

/** Internals of ws 8 that the fast path reads (see ws/lib/websocket.js and sender.js). */
interface WsInternals {
  _socket?: { write(chunk: Buffer): boolean; destroyed: boolean } | null;
  _extensions?: Record<string, unknown>;
  _sender?: { _state?: number; _queue?: unknown[] };
}

const OPEN = 1;

/** Switch for measuring (the benchmark compares with and without); on by default. */
export const fastPath = { enabled: true };

/** The header of an unmasked text frame (FIN set) with a payload of `length` bytes. */
function headerLength(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

function writeHeader(target: Buffer, offset: number, length: number): number {
  target[offset] = 0x81;
  if (length < 126) {
    target[offset + 1] = length;
    return offset + 2;
  }
  if (length < 65536) {
    target[offset + 1] = 126;
    target.writeUInt16BE(length, offset + 2);
    return offset + 4;
  }
  target[offset + 1] = 127;
  target.writeUInt32BE(Math.floor(length / 2 ** 32), offset + 2);
  target.writeUInt32BE(length >>> 0, offset + 6);
  return offset + 10;
}

/** The text frames of `messages`, one after the other, in one buffer. */
export function textFrames(messages: readonly string[]): Buffer {
  const lengths = messages.map((m) => Buffer.byteLength(m));
  let total = 0;
  for (const length of lengths) total += headerLength(length) + length;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (let i = 0; i < messages.length; i++) {
    offset = writeHeader(out, offset, lengths[i]);
    offset += out.write(messages[i], offset, lengths[i], 'utf8');
  }
  return out;
}

/**
 * Writes prebuilt frames straight to the socket under `ws` when that is
 * exactly what `ws.send` would do; false when the caller must use `ws.send`.
 */
export function writeFrames(ws: WebSocket, bytes: Buffer): boolean {
  if (!fastPath.enabled || ws.readyState !== OPEN) return false;
  const internals = ws as unknown as WsInternals;
  const socket = internals._socket;
  const sender = internals._sender;
  if (!socket || socket.destroyed || !sender || !Array.isArray(sender._queue)) return false;
  // Compression, or a frame of ws's own still queued (compressing, reading a blob): keep ws's order.
  if (sender._state !== 0 || sender._queue.length > 0) return false;
  if (internals._extensions && Object.keys(internals._extensions).length > 0) return false;
  socket.write(bytes);
  return true;
}

/**
 * Most bytes (counted as string length) a channel's batch collects before it
 * is handed over at once: memory stays bounded when messages arrive faster
 * than turns end (a publisher in the same process), and one batch never
 * dwarfs the slow-client bound, which is checked before each write.
 */
export const MAX_BATCH_BYTES = 64 * 1024;

interface Pending {
  messages: string[];
  bytes: number;
}

/**
 * Collects what each channel receives within one turn of the event loop and
 * hands it over once, as a FrameBatch, at the end of the turn (setImmediate:
 * after the reads of this turn, before timers of the next), or as soon as it
 * holds MAX_BATCH_BYTES.
 */
export class TickBatcher {
  private pending = new Map<string, Pending>();
  private scheduled = false;

  constructor(private readonly flushChannel: (channel: string, batch: FrameBatch) => void) {}

  add(channel: string, message: string): void {
    let entry = this.pending.get(channel);
    if (entry) {
      entry.messages.push(message);
      entry.bytes += message.length;
    } else {
      entry = { messages: [message], bytes: message.length };
      this.pending.set(channel, entry);
    }
    if (entry.bytes >= MAX_BATCH_BYTES) {
      this.pending.delete(channel);
      this.hand(channel, entry.messages);
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Hands every pending channel's batch over now. */
  flush(): void {
    this.scheduled = false;
    const pending = this.pending;
    if (pending.size === 0) return;
    this.pending = new Map();
    for (const [channel, entry] of pending) this.hand(channel, entry.messages);
  }

  private hand(channel: string, messages: string[]): void {
    let bytes: Buffer | undefined;
    // The frames are built on first use: a channel whose sockets all fall back never builds them.
    this.flushChannel(channel, {
      messages,
      get bytes() {
        bytes ??= textFrames(messages);
        return bytes;
      },
    });
  }
}
