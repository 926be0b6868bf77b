/**
 * How each target is published to, from the driver process: the floor with a
 * plain Redis PUBLISH, Socket.IO with @socket.io/redis-emitter, atr with
 * `atr.publish()` or (atr-model) with inserts of a Publishable model. All use
 * the same Redis and the same payload.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Emitter } from '@socket.io/redis-emitter';
import knexFactory from 'knex';
import { Model } from 'objection';
import { createClient } from 'redis';
import { createAtr, Publishable } from '../src/index';
import { silentLogger } from '../src/logger';
import type { TargetName } from './protocol';

export interface Publisher {
  /** Publishes one event to scope number `scope`; does not wait for Redis. */
  publish(scope: number, data: Record<string, unknown>): void;
  /** Waits until everything handed in has reached Redis. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

const EVENT = 'post.updated';

async function redisClient(url: string) {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Tracks the promises of publishes so that flush() can wait for them. */
class Pending {
  private last: Promise<unknown> = Promise.resolve();
  errors = 0;
  add(promise: Promise<unknown>): void {
    this.last = promise.catch(() => {
      this.errors++;
    });
  }
  async flush(): Promise<void> {
    await this.last;
  }
}

async function floorPublisher(url: string, prefix: string): Promise<Publisher> {
  const client = await redisClient(url);
  const pending = new Pending();
  return {
    publish(scope, data) {
      pending.add(client.publish(`${prefix}floor:/organization/${scope}`, JSON.stringify({ name: EVENT, data })));
    },
    flush: () => pending.flush(),
    close: async () => {
      await pending.flush();
      await client.quit();
    },
  };
}

async function socketioPublisher(url: string, prefix: string): Promise<Publisher> {
  const client = await redisClient(url);
  const emitter = new Emitter(client, { key: `${prefix}sio` });
  return {
    publish(scope, data) {
      emitter.to(`organization.${scope}`).emit(EVENT, data);
    },
    // The emitter does not return its PUBLISH; a PING queued after it comes back after it.
    flush: async () => {
      await client.ping();
    },
    close: async () => {
      await client.ping();
      await client.quit();
    },
  };
}

async function atrPublisher(url: string, prefix: string): Promise<Publisher> {
  const atr = createAtr({ broker: url, channelPrefix: `${prefix}atr:`, logger: silentLogger });
  await atr.connect();
  const pending = new Pending();
  return {
    publish(scope, data) {
      pending.add(atr.publish({ scope: `organization.${scope}`, name: EVENT, data }));
    },
    flush: () => pending.flush(),
    close: async () => {
      await pending.flush();
      await atr.close();
    },
  };
}


/**
 * atr through model inserts: a Publishable model on SQLite (WAL) inserts one
 * row per event; its `t` column carries the publish time for latency.
 */
async function modelPublisher(url: string, prefix: string): Promise<Publisher> {
  const atr = createAtr({ broker: url, channelPrefix: `${prefix}atr:`, logger: silentLogger });
  await atr.connect();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atr-bench-model-'));
  const knex = knexFactory({ client: 'better-sqlite3', connection: { filename: path.join(dir, 'bench.sqlite') }, useNullAsDefault: true });
  await knex.raw('PRAGMA journal_mode = WAL');
  await knex.raw('PRAGMA synchronous = NORMAL');
  await knex.schema.createTable('posts', (t) => {
    t.bigInteger('t');
    t.increments('id');
    t.integer('organization_id').notNullable();
    t.string('title');
    t.text('body');
    t.string('status');
  });
  class Post extends Publishable(Model) {
    static override tableName = 'posts';
    static override publicationScope = ['organization_id'];
    static override atr = atr;
  }
  const pending = new Pending();
  return {
    publish(scope, data) {
      const row = { t: data.t, organization_id: scope, title: data.title, body: data.body, status: data.status };
      pending.add(Promise.resolve(Post.query(knex).insert(row)));
    },
    flush: async () => {
      await pending.flush();
      while (atr.pending > 0) await new Promise((resolve) => setTimeout(resolve, 1));
    },
    close: async () => {
      await pending.flush();
      await atr.close();
      await knex.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function createPublisher(target: TargetName, url: string, prefix: string): Promise<Publisher> {
  if (target === 'floor') return floorPublisher(url, prefix);
  if (target === 'socketio') return socketioPublisher(url, prefix);
  if (target === 'atr-model') return modelPublisher(url, prefix);
  return atrPublisher(url, prefix); // atr and atr-nofast
}
