/**
 * What a model event carries, on SQLite, PostgreSQL and MariaDB: hidden
 * fields never leave the app (not into Redis, not onto a socket), the
 * allow-list, values JSON cannot carry as they are, and serializers that fail.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import express from 'express';
import { createClient } from 'redis';
import WebSocket from 'ws';
import { createAtr } from '../../src/atr';
import type { Atr } from '../../src/atr';
import type { DataEvent, ModelEvent } from '../../src/event';
import { DefaultEventSerializer } from '../../src/event';
import { silentLogger } from '../../src/logger';
import { atrRouter } from '../../src/server/router';
import { captureEvents, expectEvents } from '../../src/testing';
import { DIALECTS, makeModels, useModelSuite } from '../helpers/model-dialects';
import type { Database } from '../helpers/model-dialects';
import { REDIS_URL, requireRedis } from '../helpers/services';

const HIDDEN = /password_hash|api_token|s3cr3t-hash|tok-123/;

for (const dialect of DIALECTS) {
  describe(`what model events carry on ${dialect}`, () => {
    let db: Database;
    let atr: Atr;
    let models: ReturnType<typeof makeModels>;
    const errors: Error[] = [];

    useModelSuite(dialect, 'atr_mvl', errors, (m) => [m.Comment, m.Post, m.NumberRow], (suite) => ({ db, atr, models } = suite));

    it('M5: keeps the fields $formatJson removes out of every payload, in the broker and on a socket, on create, update and destroy', async () => {
      await requireRedis();
      const prefix = `atr-m5-${dialect}:`;
      const redisAtr = createAtr({ broker: REDIS_URL, channelPrefix: prefix, logger: silentLogger, onError: (err) => errors.push(err) });
      const { Post } = makeModels(db, redisAtr);
      const spy = createClient({ url: REDIS_URL });
      spy.on('error', () => undefined);
      const app = express();
      const router = atrRouter(redisAtr);
      app.use('/ws', router);
      const server = http.createServer(app);
      router.attach(server);
      let socket: WebSocket | undefined;
      try {
        await spy.connect();
        const inRedis: string[] = [];
        await spy.subscribe(`${prefix}{organization.7}`, (message) => inRedis.push(message));
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const { port } = server.address() as AddressInfo;
        socket = new WebSocket(`ws://127.0.0.1:${port}/ws/organization/7`);
        const onSocket: string[] = [];
        await new Promise<void>((resolve, reject) => {
          socket!.on('message', (data) => {
            const text = data.toString();
            if (text.includes('"atr.ready"')) resolve();
            else onSocket.push(text);
          });
          socket!.once('error', reject);
        });

        const post = await Post.query().insert({ title: 'secret keeper', organization_id: 7, password_hash: 's3cr3t-hash', api_token: 'tok-123' });
        await post.$query().patch({ title: 'still secret', password_hash: 's3cr3t-hash-2' });
        await Post.query().patch({ api_token: 'tok-1234' }).where('id', post.id);
        await post.$query().delete();
        const deadline = Date.now() + 5000;
        while ((onSocket.length < 4 || inRedis.length < 4) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));

        assert.deepEqual(onSocket.map((m) => JSON.parse(m).name), ['post.created', 'post.updated', 'post.updated', 'post.destroyed']);
        assert.equal(inRedis.length, 4);
        const history = await redisAtr.broker.history(redisAtr.channelOf('organization.7'), '0-0', 100);
        for (const message of [...onSocket, ...inRedis, ...history.messages]) assert.doesNotMatch(message, HIDDEN);
        // A change of a hidden field alone is announced without naming it.
        assert.deepEqual(JSON.parse(onSocket[2]!).changes, []);
      } finally {
        socket?.terminate();
        await router.close();
        await new Promise((resolve) => server.close(resolve));
        await spy.quit().catch(() => undefined);
        await redisAtr.close();
      }
    });

    it('publishes only the publishedAttributes of a model that lists them', async () => {
      class PublicPost extends models.Post {
        static override publishedAttributes = ['id', 'title', 'organization_id'];
      }
      const [event] = await expectEvents(atr, () => PublicPost.query().insert({ title: 'listed', organization_id: 7, body: 'not listed' }), [
        { name: 'public_post.created', scope: 'organization.7' },
      ]);
      assert.deepEqual(Object.keys(event!.message.record as object).sort(), ['id', 'organization_id', 'title']);
    });

    it('M6: carries a bigint as a string, a Date as ISO text and a Buffer as base64', async () => {
      const at = new Date('2026-12-03T10:00:00.000Z');
      const [created] = await expectEvents(
        atr,
        () => models.NumberRow.query().insert({ big: '9007199254740993', blob: Buffer.from([0, 1, 2, 255]), at: dialect === 'sqlite' ? at.toISOString() : at }),
        [{ name: 'number_row.created', scope: '' }],
      );
      const record = created!.message.record as Record<string, unknown>;
      // Read back though the driver gave the bigint id as a number after the insert and reads it as text.
      assert.equal(record.note, 'filled by the database');
      assert.equal(record.big, '9007199254740993');
      assert.equal(record.blob, Buffer.from([0, 1, 2, 255]).toString('base64'));
      assert.equal(new Date(String(record.at)).toISOString(), at.toISOString());
      if (dialect !== 'sqlite') assert.equal(record.at, at.toISOString());
    });

    it('publishes a row whose loaded relations point back at it without recursing', async () => {
      const post = await models.Post.query().insertGraph({ title: 'loop', organization_id: 7, comments: [{ body: 'c', organization_id: 7 }] } as never);
      await captureEvents(atr, () => undefined);
      const loaded = (await models.Post.query().findById(post.id).withGraphFetched('comments'))!;
      loaded.comments![0]!.post = loaded; // a cycle: post → comment → post
      const [event] = await expectEvents(atr, () => loaded.$query().patch({ title: 'loop 2' }), [
        { name: 'post.updated', record: { title: 'loop 2' }, changes: ['title'] },
      ]);
      assert.equal('comments' in (event!.message.record as object), false);
    });

    it('loses only the event whose serializer throws or makes a cycle, reports it, and publishes the others', async () => {
      class PickySerializer extends DefaultEventSerializer {
        constructor(event: ModelEvent | DataEvent) {
          super(event);
        }
        override toJSON() {
          const record = (this.event as ModelEvent).record;
          if (record?.title === 'boom') throw new Error('cannot serialize boom');
          if (record?.title === 'loop') {
            const cyclic: Record<string, unknown> = { ...record };
            cyclic.self = cyclic;
            return { ...super.toJSON(), record: cyclic };
          }
          return super.toJSON();
        }
      }
      const picky = createAtr({ eventSerializer: PickySerializer, logger: silentLogger, onError: (err) => errors.push(err) });
      const { Post } = makeModels(db, picky);
      try {
        await expectEvents(
          picky,
          async () => {
            await Post.query().insert({ title: 'before', organization_id: 7 });
            await Post.query().insert({ title: 'boom', organization_id: 7 });
            await Post.query().insert({ title: 'loop', organization_id: 7 });
            await Post.query().insert({ title: 'after', organization_id: 7 });
          },
          [
            { name: 'post.created', record: { title: 'before' } },
            { name: 'post.created', record: { title: 'after' } },
          ],
        );
        assert.equal(await Post.query().resultSize(), 4, 'every insert committed');
        assert.deepEqual(errors.map((e) => (e as { code?: string }).code), ['ATR_ERR_SERIALIZE_FAILED', 'ATR_ERR_SERIALIZE_FAILED']);
        assert.match(errors[0]!.message, /cannot serialize boom/);
        assert.match(errors[1]!.message, /circular/);
        errors.length = 0;
      } finally {
        await picky.close();
      }
    });
  });
}
