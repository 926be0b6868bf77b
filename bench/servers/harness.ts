/**
 * What every server under test shares: it is started by the driver with
 * fork(), gets its options over IPC, answers memory and stats questions
 * (after a full GC, so memory figures compare), and stops on request.
 */
import type { ServerCommand, ServerOptions, ServerReply } from '../protocol';

export interface RunningServer {
  port: number;
  stats?(): Record<string, number>;
  close(): Promise<void>;
}

function reply(message: ServerReply): void {
  process.send?.(message);
}

function fullGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Twice: the first pass can leave weakly held and finalizable objects.
  gc?.();
  gc?.();
}

/** Runs `start` when the driver says so; the process exits when it is stopped or orphaned. */
export function serve(start: (options: ServerOptions) => Promise<RunningServer>): void {
  let server: RunningServer | undefined;
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (message: ServerCommand) => {
    try {
      switch (message.cmd) {
        case 'start':
          server = await start(message.options);
          reply({ type: 'ready', port: server.port, pid: process.pid });
          break;
        case 'memory': {
          fullGc();
          await new Promise((resolve) => setTimeout(resolve, 50));
          fullGc();
          const m = process.memoryUsage();
          reply({ type: 'memory', rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers });
          break;
        }
        case 'stats':
          reply({ type: 'stats', stats: server?.stats?.() ?? {} });
          break;
        case 'stop':
          await server?.close();
          reply({ type: 'stopped' });
          setTimeout(() => process.exit(0), 20).unref();
          break;
      }
    } catch (err) {
      reply({ type: 'error', message: (err as Error).stack ?? String(err) });
    }
  });
}
