/**
 * Publishing never fails a database write, on SQLite, PostgreSQL and
 * MariaDB: a broker that fails, Redis down at start or killed midway. And
 * events of one row leave in write order whatever time the serializer takes.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createAtr } from '../../src/atr';
import type { Broker, HistoryPage } from '../../src/brokers/broker';
import type { DataEvent, ModelEvent } from '../../src/event';
import { DefaultEventSerializer } from '../../src/event';
import type { Logger } from '../../src/logger';
import { captureEvents, expectEvents } from '../../src/testing';
import { DIALECTS, makeModels, openDatabase } from '../helpers/model-dialects';
import type { Database } from '../helpers/model-dialects';
import { freePort, startOwnRedis } from '../helpers/redis-server';

/** A broker whose every publish fails, as a broker that lost its server would. */
class FailingBroker extends EventEmitter implements Broker {
  readonly kind = 'failing';
  readonly ready = false;
  publishes = 0;
  async connect(): Promise<void> {}
  async publish(): Promise<string> {
    this.publishes++;
    throw new Error('the broker is gone');
  }
  async subscribe(): Promise<void> {}
  async unsubscribe(): Promise<void> {}
  subscriptions(): string[] {
    return [];
  }
  async history(_channel: string, afterId: string): Promise<HistoryPage> {
    return { messages: [], complete: false, lastId: afterId };
  }
  async position(): Promise<string> {
    return '0-000000';
  }
  async close(): Promise<void> {}
}

function recordingLogger() {
  const lines: string[] = [];
  const logger: Logger = { error: (_o, msg) => lines.push(String(msg)), warn() {}, info() {}, debug() {} };
  return { logger, lines };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const dialect of DIALECTS) {
  describe(`publishing failures never fail the write on ${dialect}`, () => {
    let db: Database;

    before(async () => {
      db = await openDatabase(dialect, 'atr_mfl');
    });
    after(async () => {
      await db.close();
    });
    beforeEach(async () => {
      await db.knex(`atr_mfl_posts`).delete();
    });

    it('commits inserts and reports the error through the logger and the error hook when the broker fails', async () => {
      const broker = new FailingBroker();
      const { logger, lines } = recordingLogger();
      const hooked: Error[] = [];
      const atr = createAtr({ broker, logger, onError: (err) => hooked.push(err) });
      const { Post } = makeModels(db, atr);
      try {
        const { dropped } = await captureEvents(atr, async () => {
          const post = await Post.query().insert({ title: 'kept', organization_id: 7 });
          await post.$query().patch({ title: 'kept 2' });
          await Post.transaction(async (trx) => Post.query(trx).insert({ title: 'kept 3', organization_id: 7 }));
        });
        assert.equal(await Post.query().resultSize(), 2);
        assert.equal(broker.publishes, 3);
        assert.equal(dropped.length, 3);
        assert.equal(hooked.length, 3);
        assert.match(hooked[0]!.message, /the broker is gone/);
        assert.equal(lines.length, 3);
      } finally {
        await atr.close();
      }
    });

    it('M7: with Redis where nothing listens, the insert commits promptly, the process stays up and the failure is reported', async () => {
      const port = await freePort();
      const hooked: Error[] = [];
      const atr = createAtr({ broker: `redis://127.0.0.1:${port}`, logger: recordingLogger().logger, onError: (err) => hooked.push(err) });
      const { Post } = makeModels(db, atr);
      try {
        const started = Date.now();
        const post = await Post.query().insert({ title: 'no redis', organization_id: 7 });
        assert.ok(Date.now() - started < 1000, `the insert took ${Date.now() - started} ms`);
        assert.equal((await db.other('atr_mfl_posts').where('id', post.id).first())?.title, 'no redis');
        const deadline = Date.now() + 10_000;
        while (hooked.length === 0 && Date.now() < deadline) await sleep(20);
        assert.ok(hooked.length >= 1, 'the failure was reported');
        assert.match(hooked.map((e) => e.message).join('\n'), /Redis is unreachable/);
      } finally {
        await atr.close();
      }
    });

    it('keeps committing when Redis is killed midway, reporting the lost events', async () => {
      const redis = await startOwnRedis();
      const hooked: Error[] = [];
      const atr = createAtr({ broker: `redis://127.0.0.1:${redis.port}`, logger: recordingLogger().logger, onError: (err) => hooked.push(err) });
      const { Post } = makeModels(db, atr);
      try {
        await expectEvents(atr, () => Post.query().insert({ title: 'while up', organization_id: 7 }), [{ name: 'post.created' }]);
        await redis.stop();
        const started = Date.now();
        await Post.query().insert({ title: 'while down', organization_id: 7 });
        await Post.transaction(async (trx) => Post.query(trx).patch({ title: 'patched while down' }).where('title', 'while down'));
        assert.ok(Date.now() - started < 2000, `the writes took ${Date.now() - started} ms`);
        assert.deepEqual((await db.other('atr_mfl_posts').orderBy('id')).map((r: { title: string }) => r.title), ['while up', 'patched while down']);
        const deadline = Date.now() + 10_000;
        while (hooked.length < 2 && Date.now() < deadline) await sleep(20);
        assert.ok(hooked.length >= 2, `two lost events reported, got ${hooked.length}`);
      } finally {
        await atr.close();
        await redis.dispose();
      }
    });

    it('publishes created, updated, destroyed of one row in that order though the serializer takes random time', async () => {
      class SlowSerializer extends DefaultEventSerializer {
        constructor(event: ModelEvent | DataEvent) {
          super(event);
        }
        override toJSON(): Record<string, unknown> {
          return new Promise((resolve) => setTimeout(() => resolve(super.toJSON()), Math.random() * 15)) as never;
        }
      }
      const atr = createAtr({ eventSerializer: SlowSerializer });
      const { Post } = makeModels(db, atr);
      try {
        const { published } = await captureEvents(atr, async () => {
          for (let i = 0; i < 5; i++) {
            const post = await Post.query().insert({ title: `r${i}`, organization_id: 7 });
            await post.$query().patch({ title: `r${i}!` });
            await post.$query().delete();
          }
        });
        const expected = [0, 1, 2, 3, 4].flatMap((i) => [`post.created r${i}`, `post.updated r${i}!`, `post.destroyed r${i}!`]);
        assert.deepEqual(published.map((p) => `${p.name} ${(p.message.record as { title: string }).title}`), expected);
        const ids = published.map((p) => p.event.id!);
        assert.deepEqual([...ids].sort(), ids, 'ids sort in publish order');
        assert.equal(new Set(ids).size, ids.length, 'ids are unique');
      } finally {
        await atr.close();
      }
    });
  });
}
