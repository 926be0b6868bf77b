/**
 * The load generator: its own process, raw TCP connections that do the
 * websocket handshake by hand and count the server's frames with a
 * hand-written parser. It reads a payload only on the few connections that
 * sample latency, so it costs far less than the servers it measures.
 *
 * Run by the driver with fork(); speaks LoadCommand / LoadReply over IPC.
 */
import net from 'node:net';
import { FrameParser, OPCODE_CLOSE, OPCODE_PING, OPCODE_TEXT, clientFrame, readTimestamp } from './frames';
import type { FrameSink } from './frames';
import type { LoadCommand, LoadReply, TargetName } from './protocol';
import { clientPath } from './protocol';

/** Frames shorter than this are protocol chatter (Socket.IO pings), not deliveries. */
const MIN_DELIVERY = 20;
const HANDSHAKES_AT_ONCE = 200;
const PONG_SIO = clientFrame(OPCODE_TEXT, '3');
const CONNECT_SIO = clientFrame(OPCODE_TEXT, '40');

let frames = 0;
let bytes = 0;
let closed = 0;
let latencies: number[] = [];
const conns: Conn[] = [];

function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

class Conn implements FrameSink {
  readonly parser = new FrameParser(this);
  ready = false;
  /** Set while a chunk is parsed: the receive time of its frames. */
  stamp = 0;

  constructor(
    readonly socket: net.Socket,
    readonly target: TargetName,
  ) {}

  onFrame(opcode: number, length: number, payload: Buffer | undefined): void {
    if (opcode === OPCODE_TEXT) {
      if (this.ready) {
        if (length >= MIN_DELIVERY) {
          frames++;
          bytes += length;
          if (payload && this.parser.wantPayload) {
            const t = readTimestamp(payload);
            if (t > 0) latencies.push(this.stamp - t);
          }
        } else if (this.target === 'socketio' && payload && payload.length === 1 && payload[0] === 0x32) {
          this.socket.write(PONG_SIO);
        }
        return;
      }
      this.handshakeFrame(payload);
    } else if (opcode === OPCODE_PING) {
      this.socket.write(clientFrame(0x0a, payload));
    } else if (opcode === OPCODE_CLOSE) {
      closed++;
      this.socket.destroy();
    }
  }

  /** Frames before readiness: the library's own hello (atr.ready, Socket.IO's open and connect). */
  private handshakeFrame(payload: Buffer | undefined): void {
    const text = payload ? payload.toString() : '';
    if (this.target === 'socketio') {
      if (text.startsWith('0')) this.socket.write(CONNECT_SIO);
      else if (text.startsWith('40')) this.becomeReady();
      else if (text === '2') this.socket.write(PONG_SIO);
    } else if (text.includes('"atr.ready"') || this.target === 'floor') {
      this.becomeReady();
    }
  }

  becomeReady(): void {
    this.ready = true;
    readyWaiters.get(this)?.();
  }
}

const readyWaiters = new Map<Conn, () => void>();

/**
 * Throughput runs read each connection at most every `batchMs`: frames pile
 * up in the kernel's buffer and one read takes many of them, so the load
 * generator costs a fraction of the server. The server does not notice (the
 * buffers are far from full). Latency runs read at once (batchMs 0).
 */
let batchMs = 0;
let paused: net.Socket[] = [];
let resumer: NodeJS.Timeout | undefined;

function resumeAll(): void {
  const list = paused;
  paused = [];
  for (const socket of list) socket.resume();
}

function setBatch(ms: number): void {
  batchMs = ms;
  clearInterval(resumer);
  resumer = ms > 0 ? setInterval(resumeAll, ms) : undefined;
  if (ms === 0) resumeAll();
}

/** One read buffer for every connection: chunks are parsed before the next read. */
const READ_BUFFER = Buffer.alloc(256 * 1024);

function open(target: TargetName, port: number, scope: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    let conn: Conn | undefined;
    let head: Buffer | undefined = Buffer.alloc(0);
    const onChunk = (chunk: Buffer) => {
      const c = conn!;
      c.stamp = c.parser.wantPayload ? nowMicros() : 0;
      if (head) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const status = head.subarray(0, head.indexOf('\r\n')).toString();
        if (!status.includes(' 101 ')) return fail(new Error(`no upgrade: ${status}`));
        const rest = head.subarray(end + 4);
        head = undefined;
        if (target === 'floor') c.becomeReady();
        if (rest.length) c.parser.push(rest);
        return;
      }
      c.parser.push(chunk);
    };
    // onread: no stream machinery and no allocation per read.
    const socket = net.connect({
      port,
      host: '127.0.0.1',
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array) => {
          onChunk((buf as Buffer).subarray(0, n));
          if (batchMs === 0) return true;
          paused.push(socket);
          return false;
        },
      },
    });
    conn = new Conn(socket, target);
    const self = conn;
    // Until ready, every frame payload is read (the hello frames).
    self.parser.wantPayload = true;
    const timer = setTimeout(() => fail(new Error('handshake timed out')), 30_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      readyWaiters.delete(self);
      socket.destroy();
      reject(err);
    };
    readyWaiters.set(self, () => {
      clearTimeout(timer);
      readyWaiters.delete(self);
      self.parser.wantPayload = false;
      resolve(self);
    });
    socket.on('error', fail);
    socket.on('connect', () => {
      socket.write(
        `GET ${clientPath(target, scope)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    socket.on('close', () => {
      if (!self.ready) fail(new Error('closed before ready'));
    });
  });
}

async function connectAll(target: TargetName, port: number, clients: number, scopes: number): Promise<LoadReply> {
  const started = Date.now();
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (next < clients) {
      const i = next++;
      try {
        conns.push(await open(target, port, i % scopes));
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(HANDSHAKES_AT_ONCE, clients) }, worker));
  return { type: 'connected', connected: conns.length, failed, ms: Date.now() - started, firstError };
}

function reply(message: LoadReply): void {
  process.send?.(message);
}

let watcher: NodeJS.Timeout | undefined;

process.on('message', async (message: LoadCommand) => {
  switch (message.cmd) {
    case 'connect':
      reply(await connectAll(message.target, message.port, message.clients, message.scopes));
      break;
    case 'batch':
      setBatch(message.ms);
      break;
    case 'sample':
      latencies = [];
      conns.forEach((conn, i) => {
        conn.parser.wantPayload = message.every > 0 && i % message.every === 0;
      });
      break;
    case 'watch':
      clearInterval(watcher);
      watcher = setInterval(() => reply({ type: 'count', frames, bytes, closed }), message.intervalMs);
      break;
    case 'unwatch':
      clearInterval(watcher);
      watcher = undefined;
      break;
    case 'count':
      reply({ type: 'count', frames, bytes, closed });
      break;
    case 'latencies':
      reply({ type: 'latencies', micros: latencies });
      latencies = [];
      break;
    case 'close':
      clearInterval(watcher);
      setBatch(0);
      // A reset leaves no TIME_WAIT behind: the next run needs the ports.
      for (const conn of conns) conn.socket.resetAndDestroy();
      conns.length = 0;
      reply({ type: 'closed' });
      process.disconnect?.();
      break;
  }
});
