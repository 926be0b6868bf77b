/**
 * Child processes of the bench (servers under test, the load generator):
 * forked with tsx and --expose-gc, spoken to over IPC, their CPU time read
 * from /proc so that every thread (GC, libuv pool) counts.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** User + system CPU time of a process so far, in microseconds. */
export function cpuMicrosOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / TICKS;
}

export class Child<Command, Reply extends { type: string }> {
  readonly process: ChildProcess;
  private readonly waiting: Array<{ type: string; resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  private readonly listeners = new Map<string, (r: Reply) => void>();
  private exited = false;

  constructor(file: string, readonly name: string) {
    this.process = fork(path.join(__dirname, file), [], {
      execArgv: ['--import', 'tsx', '--expose-gc', '--max-old-space-size=4096'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      cwd: path.join(__dirname, '..'),
    });
    this.process.on('message', (message: Reply) => {
      if (message.type === 'error') {
        const waiter = this.waiting.shift();
        const err = new Error(`${name}: ${(message as unknown as { message: string }).message}`);
        if (waiter) waiter.reject(err);
        else console.error(err.message);
        return;
      }
      const index = this.waiting.findIndex((w) => w.type === message.type);
      if (index >= 0) {
        const [waiter] = this.waiting.splice(index, 1);
        waiter.resolve(message);
        return;
      }
      this.listeners.get(message.type)?.(message);
    });
    this.process.on('exit', (code) => {
      this.exited = true;
      for (const waiter of this.waiting.splice(0)) waiter.reject(new Error(`${name} exited (${code})`));
    });
  }

  get pid(): number {
    return this.process.pid ?? 0;
  }

  cpuMicros(): number {
    return cpuMicrosOf(this.pid);
  }

  send(command: Command): void {
    if (!this.exited) this.process.send(command as object);
  }

  /** Sends a command and waits for the first reply of `type`. */
  request<T extends Reply['type']>(command: Command, type: T, timeoutMs = 120_000): Promise<Extract<Reply, { type: T }>> {
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(new Error(`${this.name} has exited`));
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${type} within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({
        type,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r as Extract<Reply, { type: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.send(command);
    });
  }

  /** Handles unsolicited replies of `type` (progress counts). */
  on<T extends Reply['type']>(type: T, listener: (r: Extract<Reply, { type: T }>) => void): void {
    this.listeners.set(type, listener as (r: Reply) => void);
  }

  /** Ends the child: politely if it listens, by signal after a grace period. */
  async end(goodbye?: Command, type?: Reply['type']): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    if (goodbye && type) await this.request(goodbye, type, 10_000).catch(() => undefined);
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 3000);
    if (this.process.connected) this.process.disconnect();
    await gone;
    clearTimeout(timer);
  }
}
