/**
 * Publish after commit, on SQLite, PostgreSQL and MariaDB: events wait for
 * the outermost commit, go out in commit order, and never announce work that
 * was rolled back (a rolled-back savepoint included).
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { Atr } from '../../src/atr';
import { captureEvents, expectEvents, expectNoEvents } from '../../src/testing';
import { DIALECTS, makeModels, useModelSuite } from '../helpers/model-dialects';
import type { Database } from '../helpers/model-dialects';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const dialect of DIALECTS) {
  describe(`publishing after commit on ${dialect}`, () => {
    let db: Database;
    let atr: Atr;
    let models: ReturnType<typeof makeModels>;
    const errors: Error[] = [];

    useModelSuite(dialect, 'atr_mtx', errors, () => [], (suite) => ({ db, atr, models } = suite));
    beforeEach(async () => {
      await db.knex(models.Comment.tableName).delete();
      await db.knex(models.Post.tableName).delete();
      errors.length = 0;
    });

    it('M1: publishes nothing before the commit and one post.created after it, when the row is visible elsewhere', async () => {
      const { Post } = models;
      const seen: Array<{ name: string; visible: Promise<unknown> }> = [];
      const onPublished = (event: { name: string; record?: { id?: unknown } }) => {
        // Look from another connection the moment the event leaves.
        seen.push({ name: event.name, visible: db.other(Post.tableName).where('id', event.record!.id as number).first() });
      };
      atr.on('published', onPublished);
      try {
        await Post.transaction(async (trx) => {
          await Post.query(trx).insert({ title: 'M1', organization_id: 7 });
          await sleep(200);
          assert.equal(seen.length, 0, 'an event left before the commit');
        });
        await captureEvents(atr, () => undefined);
        assert.deepEqual(seen.map((s) => s.name), ['post.created']);
        const row = (await seen[0]!.visible) as { title: string } | undefined;
        assert.equal(row?.title, 'M1');
      } finally {
        atr.off('published', onPublished);
      }
    });

    it('M2: publishes nothing for a rolled-back insert, and nothing reaches the broker', async () => {
      const { Post } = models;
      const before = await atr.position('organization.7');
      await expectNoEvents(
        atr,
        () =>
          Post.transaction(async (trx) => {
            await Post.query(trx).insert({ title: 'M2', organization_id: 7 });
            throw new Error('roll back');
          }).catch((err: Error) => assert.equal(err.message, 'roll back')),
        { settle: 500 },
      );
      assert.equal(await atr.position('organization.7'), before);
      assert.equal(await Post.query().resultSize(), 0);
    });

    it('drops the events of a transaction rolled back with trx.rollback() (no error)', async () => {
      const { Post } = models;
      await expectNoEvents(atr, async () => {
        const trx = await Post.startTransaction();
        await Post.query(trx).insert({ title: 'manual', organization_id: 7 });
        await trx.rollback();
      });
    });

    it('publishes the events of a transaction committed with trx.commit()', async () => {
      const { Post } = models;
      await expectEvents(
        atr,
        async () => {
          const trx = await Post.startTransaction();
          await Post.query(trx).insert({ title: 'manual', organization_id: 7 });
          await trx.commit();
        },
        [{ name: 'post.created', scope: 'organization.7', record: { title: 'manual' } }],
      );
    });

    it('follows knex.transaction() and a model bound to the transaction', async () => {
      const { Post } = models;
      await expectEvents(
        atr,
        () =>
          db.knex.transaction(async (trx) => {
            await Post.bindKnex(trx).query().insert({ title: 'bound', organization_id: 7 });
            await Post.query(trx).patch({ title: 'bound 2' }).where('title', 'bound');
          }),
        [
          { name: 'post.created', scope: 'organization.7', record: { title: 'bound' } },
          { name: 'post.updated', scope: 'organization.7', record: { title: 'bound 2' }, changes: ['title'] },
        ],
      );
    });

    it('drops the events of a rolled-back savepoint and still publishes the outer transaction’s', async () => {
      const { Post } = models;
      await expectEvents(
        atr,
        () =>
          Post.transaction(async (trx) => {
            await Post.query(trx).insert({ title: 'outer 1', organization_id: 7 });
            await trx
              .transaction(async (savepoint) => {
                await Post.query(savepoint).insert({ title: 'inner', organization_id: 7 });
                throw new Error('undo the savepoint');
              })
              .catch(() => undefined);
            await Post.query(trx).insert({ title: 'outer 2', organization_id: 7 });
          }),
        [
          { name: 'post.created', record: { title: 'outer 1' } },
          { name: 'post.created', record: { title: 'outer 2' } },
        ],
      );
      assert.deepEqual((await Post.query().orderBy('id')).map((p) => p.title), ['outer 1', 'outer 2']);
    });

    it('publishes a released savepoint’s events with the outer commit, in write order', async () => {
      const { Post } = models;
      const seenBeforeCommit: number[] = [];
      await expectEvents(
        atr,
        () =>
          Post.transaction(async (trx) => {
            await Post.query(trx).insert({ title: 'a', organization_id: 7 });
            await trx.transaction(async (savepoint) => {
              await Post.query(savepoint).insert({ title: 'b', organization_id: 7 });
              await savepoint.transaction(async (deeper) => {
                await Post.query(deeper).insert({ title: 'c', organization_id: 7 });
              });
            });
            await sleep(20);
            seenBeforeCommit.push(atr.pending);
            await Post.query(trx).insert({ title: 'd', organization_id: 7 });
          }),
        ['a', 'b', 'c', 'd'].map((title) => ({ name: 'post.created', record: { title } })),
      );
      assert.deepEqual(seenBeforeCommit, [0]);
    });

    it('drops a released savepoint’s events when the outer transaction rolls back', async () => {
      const { Post } = models;
      await expectNoEvents(atr, () =>
        Post.transaction(async (trx) => {
          await trx.transaction(async (savepoint) => {
            await Post.query(savepoint).insert({ title: 'released', organization_id: 7 });
          });
          await trx.rollback();
        }),
      );
    });

    it('publishes writes outside a transaction at once, before the write returns', async () => {
      const { Post } = models;
      let published = 0;
      const count = () => published++;
      atr.on('published', count);
      try {
        await Post.query().insert({ title: 'now', organization_id: 7 });
        // Handed to the pipeline already: nothing waits for a commit.
        assert.equal(atr.pending + published, 1);
        await captureEvents(atr, () => undefined);
        assert.equal(published, 1);
      } finally {
        atr.off('published', count);
      }
    });

    if (dialect === 'postgres') {
      it('drops the events of a PostgreSQL transaction that a failed statement aborted, though COMMIT "succeeds"', async () => {
        const { Post } = models;
        await expectNoEvents(atr, async () => {
          const trx = await Post.startTransaction();
          await Post.query(trx).insert({ title: 'lost', organization_id: 7 });
          await trx.raw('select * from no_such_table_atr').catch(() => undefined);
          await trx.commit();
        });
        assert.equal(await Post.query().resultSize(), 0);
      });
    }

    if (dialect !== 'sqlite') {
      // SQLite has one writer: two write transactions cannot overlap there.
      it('drops the events of a transaction the database rolled back on a deadlock, though the app commits after it', async () => {
        const { Post } = models;
        const a = await Post.query().insert({ title: 'a', organization_id: 7 });
        const b = await Post.query().insert({ title: 'b', organization_id: 7 });
        await captureEvents(atr, () => undefined);
        const { published } = await captureEvents(atr, async () => {
          const t1 = await Post.startTransaction();
          const t2 = await Post.startTransaction();
          await Post.query(t1).patch({ title: 'by t1' }).where('id', a.id);
          await Post.query(t2).patch({ title: 'by t2' }).where('id', b.id);
          const crossed1 = Post.query(t1).patch({ title: 'by t1' }).where('id', b.id);
          await sleep(50);
          const crossed2 = Post.query(t2).patch({ title: 'by t2' }).where('id', a.id);
          const outcomes = await Promise.allSettled([crossed1, crossed2]);
          const failed = outcomes.filter((o) => o.status === 'rejected') as PromiseRejectedResult[];
          assert.equal(failed.length, 1, 'the database picked one victim');
          assert.match(String(failed[0]!.reason?.message ?? failed[0]!.reason), /deadlock/i);
          // An app that ignores the error and commits both.
          await t1.commit().catch(() => undefined);
          await t2.commit().catch(() => undefined);
        });
        const rows = await Post.query().orderBy('id');
        const winner = rows[0]!.title;
        assert.deepEqual(rows.map((r) => r.title), [winner, winner], 'one transaction won both rows');
        assert.deepEqual(published.map((p) => (p.message.record as { title: string }).title), [winner, winner]);
      });

      it('publishes in commit order when transactions overlap', async () => {
        const { Post } = models;
        await expectEvents(
          atr,
          async () => {
            let releaseFirst!: () => void;
            const firstMayCommit = new Promise<void>((resolve) => (releaseFirst = resolve));
            const first = Post.transaction(async (trx) => {
              await Post.query(trx).insert({ title: 'first written', organization_id: 7 });
              await firstMayCommit;
            });
            await sleep(30);
            await Post.transaction(async (trx) => {
              await Post.query(trx).insert({ title: 'second written', organization_id: 7 });
            });
            releaseFirst();
            await first;
          },
          [
            { name: 'post.created', record: { title: 'second written' } },
            { name: 'post.created', record: { title: 'first written' } },
          ],
        );
      });
    }

  });
}
