/**
 * Hand-parsed websocket frames for the load generator: a full client would
 * cost more than the servers it measures. Server frames are never masked, so
 * a frame is a 2-, 4- or 10-byte header and a payload; the parser skips the
 * payload unless the connection wants to read it (latency samples).
 */

export const OPCODE_TEXT = 1;
export const OPCODE_CLOSE = 8;
export const OPCODE_PING = 9;
/**
 * Payloads shorter than this are always read: control frames (a ping is
 * answered with its payload) and protocol chatter such as Socket.IO's "2".
 */
export const SMALL = 32;

export interface FrameSink {
  /** Called for every complete frame; `payload` only when `wantPayload` is true. */
  onFrame(opcode: number, length: number, payload: Buffer | undefined): void;
}

/**
 * Feeds chunks of a server's byte stream in, calls the sink per frame. Keeps
 * no copy of a skipped payload; a header split across chunks is joined. The
 * chunk may be reused by the caller once push() returns.
 */
export class FrameParser {
  /** Payload bytes of the current frame still to come. */
  private remaining = 0;
  private opcode = 0;
  /** Whether the current frame's payload is kept. */
  private reading = false;
  private length = 0;
  /** Bytes of a header (or, when reading payloads, of a frame) split across chunks. */
  private partial: Buffer | undefined;
  private collected: Buffer[] = [];

  constructor(
    private readonly sink: FrameSink,
    public wantPayload = false,
  ) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.partial) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    let pos = 0;
    const end = buf.length;
    while (pos < end) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, end - pos);
        if (this.reading) this.collected.push(buf.subarray(pos, pos + take));
        this.remaining -= take;
        pos += take;
        if (this.remaining === 0) this.finish();
        continue;
      }
      if (end - pos < 2) {
        this.partial = Buffer.from(buf.subarray(pos));
        return;
      }
      const b0 = buf[pos];
      let len = buf[pos + 1] & 0x7f;
      let header = 2;
      if (len === 126) {
        if (end - pos < 4) {
          this.partial = Buffer.from(buf.subarray(pos));
          return;
        }
        len = buf.readUInt16BE(pos + 2);
        header = 4;
      } else if (len === 127) {
        if (end - pos < 10) {
          this.partial = Buffer.from(buf.subarray(pos));
          return;
        }
        len = buf.readUInt32BE(pos + 2) * 2 ** 32 + buf.readUInt32BE(pos + 6);
        header = 10;
      }
      pos += header;
      this.opcode = b0 & 0x0f;
      this.length = len;
      this.remaining = len;
      this.reading = this.wantPayload || this.opcode !== OPCODE_TEXT || len < SMALL;
      if (len === 0) this.finish();
    }
    // A frame still in progress: keep a copy, the chunk's memory is reused.
    if (this.collected.length) this.collected = [Buffer.concat(this.collected)];
  }

  private finish(): void {
    let payload: Buffer | undefined;
    if (this.reading) {
      payload = this.collected.length === 1 ? this.collected[0] : Buffer.concat(this.collected);
    }
    this.collected = [];
    this.sink.onFrame(this.opcode, this.length, payload);
  }
}

/** A masked client frame (mask key 0000: valid, and the payload stays as is). */
export function clientFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  if (data.length > 125) throw new RangeError('clientFrame: payloads over 125 bytes are not needed here');
  const out = Buffer.alloc(6 + data.length);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | data.length;
  data.copy(out, 6);
  return out;
}

/** The microsecond timestamp a publisher put in a payload as `"t":<digits>`, or -1. */
export function readTimestamp(payload: Buffer): number {
  const at = payload.indexOf('"t":');
  if (at < 0) return -1;
  let n = 0;
  for (let i = at + 4; i < payload.length; i++) {
    const c = payload[i];
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return n;
}
