/**
 * Messages between the bench driver and its child processes (IPC). The
 * targets are the servers under test; each speaks the same small protocol.
 */

/**
 * `atr-nofast`: atr with its fast path switched off, to show what the fast
 * path buys; `atr-model`: atr published through model inserts.
 */
export type TargetName = 'floor' | 'socketio' | 'atr' | 'atr-nofast' | 'atr-model';

/** Driver → load generator. */
export type LoadCommand =
  | { cmd: 'connect'; target: TargetName; port: number; clients: number; scopes: number }
  | { cmd: 'sample'; every: number }
  | { cmd: 'batch'; ms: number }
  | { cmd: 'watch'; intervalMs: number }
  | { cmd: 'unwatch' }
  | { cmd: 'count' }
  | { cmd: 'latencies' }
  | { cmd: 'close' };

/** Load generator → driver. */
export type LoadReply =
  | { type: 'connected'; connected: number; failed: number; ms: number; firstError?: string }
  | { type: 'count'; frames: number; bytes: number; closed: number }
  | { type: 'latencies'; micros: number[] }
  | { type: 'closed' };

/** Driver → server under test. */
export type ServerCommand =
  | { cmd: 'start'; options: ServerOptions }
  | { cmd: 'memory' }
  | { cmd: 'stats' }
  | { cmd: 'stop' };

export interface ServerOptions {
  redisUrl: string;
  /** Unique per run, so runs never hear each other. */
  prefix: string;
  /** atr only: write frames through the fast path (default true when it exists). */
  fastPath?: boolean;
}

/** Server under test → driver. */
export type ServerReply =
  | { type: 'ready'; port: number; pid: number }
  | { type: 'memory'; rss: number; heapUsed: number; external: number; arrayBuffers: number }
  | { type: 'stats'; stats: Record<string, number> }
  | { type: 'error'; message: string }
  | { type: 'stopped' };

/** Path (with query) a client of each target opens for scope number `scope`. */
export function clientPath(target: TargetName, scope: number): string {
  if (target === 'socketio') return `/socket.io/?EIO=4&transport=websocket&scope=${scope}`;
  return `/organization/${scope}`;
}
