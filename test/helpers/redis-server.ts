/**
 * Redis servers a test owns: one on a free port that the test may stop and
 * start again, or a three-node cluster. The shared Redis on 6379 is left alone.
 */
import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);
  return stdout.trim();
}

export class OwnRedis {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'atr-redis-'));
  constructor(readonly port: number, private readonly extra: string[] = []) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (or starts again) the server and waits until it answers. */
  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--dir', this.dir, ...this.extra,
    ], { stdio: 'ignore' });
    this.child = child;
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    // A server with --requirepass answers NOAUTH: up all the same.
    await waitFor(async () => /^PONG$|NOAUTH/.test(await redisCli(this.port, 'PING')), `redis-server on ${this.port}`);
  }

  /** Kills the server (SIGKILL: like a crash, no goodbye to clients) and waits until the port is free. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A redis-server of this test on a free port. */
export async function startOwnRedis(): Promise<OwnRedis> {
  const redis = new OwnRedis(await freePort());
  await redis.start();
  return redis;
}

export class OwnCluster {
  readonly nodes: OwnRedis[];
  constructor(ports: number[], dir: string) {
    this.nodes = ports.map((port) => new OwnRedis(port, [
      '--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '2000',
    ]));
  }

  get url(): string {
    return `redis+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.dispose()));
  }
}

/** Three cluster-mode redis-servers on free ports, joined with `redis-cli --cluster create`. */
export async function startOwnCluster(): Promise<OwnCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atr-cluster-'));
  const ports: number[] = [];
  while (ports.length < 3) {
    const port = await freePort();
    // A cluster node also listens on port + 10000.
    if (port < 55_000 && !ports.includes(port)) ports.push(port);
  }
  const cluster = new OwnCluster(ports, dir);
  try {
    await Promise.all(cluster.nodes.map((n) => n.start()));
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const port of ports) {
      await waitFor(async () => (await redisCli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'), `cluster_state:ok on ${port}`, 20_000);
    }
  } catch (err) {
    await cluster.dispose();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return cluster;
}
