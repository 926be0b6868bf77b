/**
 * `atr-server` and a publishing app as child processes, for the scale-out,
 * outage and shutdown tests. The server runs from the sources through tsx,
 * the same entry the bin shim runs from dist.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';

const root = path.resolve(__dirname, '../..');

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly logs: Record<string, unknown>[];
  readonly stderr: string[];
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startAtrServer(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'start', '--port', '0', ...args], {
    cwd: root,
    env: { ...process.env, ATR_REDIS_URL: '', REDIS_URL: '', ATR_CONFIG: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`atr-server did not start: ${stderr.join('\n')}`)), 20_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`atr-server exited with ${code}: ${stderr.join('\n')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(record);
      if (record.msg === 'atr-server: listening') {
        clearTimeout(timer);
        resolve({
          child, port: record.port as number, logs, stderr, exited,
          async stop(signal: NodeJS.Signals = 'SIGTERM') {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
  });
}

/** A websocket client that records every message and its close. */
export class TestClient {
  readonly messages: Record<string, unknown>[] = [];
  closeCode: number | undefined;
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.socket.on('message', (data) => this.messages.push(JSON.parse(String(data)) as Record<string, unknown>));
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.socket.once('close', (code) => {
      this.closeCode = code;
      resolve(code);
    }));
  }

  /** Resolves when the server said atr.ready (subscribed). */
  async ready(): Promise<void> {
    await this.opened;
    await waitUntil(() => this.messages.some((m) => m.name === 'atr.ready'), 'atr.ready');
  }

  events(): Record<string, unknown>[] {
    return this.messages.filter((m) => typeof m.name === 'string' && !(m.name as string).startsWith('atr.'));
  }

  close(): void {
    this.socket.close();
  }
}

export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function httpStatus(port: number, pathname: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${pathname}`);
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/**
 * An app process that publishes through its own Atr: a line `{"scope","name","data"}` on
 * stdin is published once the broker is ready; it answers `{"id"}` or `{"error"}`.
 */
export class AppProcess {
  readonly child: ChildProcess;
  private readonly pending: ((reply: { id?: string; error?: string }) => void)[] = [];
  readonly ready: Promise<void>;

  constructor(redisUrl: string) {
    this.child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/helpers/publisher-app.ts'), redisUrl], {
      cwd: root,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let signalReady: () => void = () => undefined;
    this.ready = new Promise((resolve) => { signalReady = resolve; });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const reply = JSON.parse(line) as { id?: string; error?: string; ready?: boolean };
      if (reply.ready) signalReady();
      else this.pending.shift()?.(reply);
    });
  }

  publish(scope: string, name: string, data: unknown): Promise<string> {
    return new Promise((resolve, reject) => {
      this.pending.push((reply) => (reply.id ? resolve(reply.id) : reject(new Error(reply.error))));
      this.child.stdin!.write(JSON.stringify({ scope, name, data }) + '\n');
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin!.end();
    await exited;
  }
}
