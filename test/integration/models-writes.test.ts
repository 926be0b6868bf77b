/**
 * Instance and query-level writes on SQLite, PostgreSQL and MariaDB: one
 * event per affected row, with the full row and its scope, moves between
 * scopes, graph writes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Model, snakeCaseMappers } from 'objection';
import { Publishable } from '../../src/publishable';
import type { Atr } from '../../src/atr';
import { captureEvents, expectEvents, expectNoEvents } from '../../src/testing';
import { DIALECTS, makeModels, useModelSuite } from '../helpers/model-dialects';
import type { Database } from '../helpers/model-dialects';

for (const dialect of DIALECTS) {
  describe(`query-level and instance writes on ${dialect}`, () => {
    let db: Database;
    let atr: Atr;
    let models: ReturnType<typeof makeModels>;
    const errors: Error[] = [];

    useModelSuite(dialect, 'atr_mqw', errors, (m) => [m.Comment, m.Post], (suite) => ({ db, atr, models } = suite));

    async function seed(...rows: Array<{ title: string; organization_id: number }>) {
      const out = [];
      for (const row of rows) out.push(await models.Post.query().insert(row));
      await captureEvents(atr, () => undefined);
      return out;
    }

    it('publishes post.created with the full row the database holds (defaults included)', async () => {
      const [event] = await expectEvents(atr, () => models.Post.query().insert({ title: 'new', organization_id: 7 }), [
        { name: 'post.created', scope: 'organization.7', record: { title: 'new', organization_id: 7, views: 0 } },
      ]);
      const record = event!.message.record as Record<string, unknown>;
      assert.equal(typeof record.id, 'number');
      assert.ok(record.created_at, 'the database default created_at is in the record');
      assert.equal(event!.message.recordType, 'Post');
      assert.match(String(event!.message.occurredAt), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    });

    it('reads inserted rows back through the model\'s column name mappers (camelCase records, database defaults included)', async () => {
      class CamelPost extends Publishable(Model) {
        static override tableName = models.Post.tableName;
        static override resourceName = 'camel_post';
        static override columnNameMappers = snakeCaseMappers();
        static override atr = atr;
      }
      const [event] = await expectEvents(atr, () => CamelPost.bindKnex(db.knex).query().insert({ title: 'camel', organizationId: 7 } as never), [
        { name: 'camel_post.created', scope: '', record: { title: 'camel', organizationId: 7, views: 0 } },
      ]);
      const record = event!.message.record as Record<string, unknown>;
      assert.ok(record.createdAt, 'the database default, under its mapped name');
      assert.equal('created_at' in record || 'organization_id' in record, false);
    });

    it('M3: publishes one post.destroyed per row of a bulk delete, each with its id', async () => {
      const posts = await seed(
        { title: 'a', organization_id: 7 },
        { title: 'b', organization_id: 7 },
        { title: 'c', organization_id: 7 },
        { title: 'other', organization_id: 8 },
      );
      const published = await expectEvents(
        atr,
        () => models.Post.query().delete().where('organization_id', 7),
        ['a', 'b', 'c'].map((title) => ({ name: 'post.destroyed', scope: 'organization.7', record: { title } })),
      );
      assert.deepEqual(
        published.map((p) => (p.message.record as { id: number }).id).sort(),
        posts.slice(0, 3).map((p) => p.id).sort(),
      );
    });

    it('M4: a query patch and an instance patch both publish post.updated with the full row, the scope and the changes', async () => {
      const [post] = await seed({ title: 'start', organization_id: 7 });
      await expectEvents(
        atr,
        async () => {
          await models.Post.query().patch({ title: 'x' }).where('id', post!.id);
          const fresh = await models.Post.query().findById(post!.id);
          await fresh!.$query().patch({ title: 'y' });
          // An instance holding only its id still publishes the full row.
          await models.Post.fromJson({ id: post!.id }, { skipValidation: true }).$query().patch({ title: 'z' });
        },
        ['x', 'y', 'z'].map((title) => ({
          name: 'post.updated',
          scope: 'organization.7',
          record: { id: post!.id, title, organization_id: 7, views: 0 },
          changes: ['title'],
        })),
      );
    });

    it('lists only the attributes whose values changed', async () => {
      const [post] = await seed({ title: 'same', organization_id: 7 });
      const [event] = await expectEvents(
        atr,
        () => models.Post.query().patch({ title: 'same', body: 'new body' }).where('id', post!.id),
        [{ name: 'post.updated' }],
      );
      assert.deepEqual(event!.message.changes, ['body']);
    });

    it('publishes one event per row of a query update, increment included', async () => {
      await seed({ title: 'a', organization_id: 7 }, { title: 'b', organization_id: 7 });
      await expectEvents(
        atr,
        () => models.Post.query().update({ title: 'u', organization_id: 7, views: 3 }).where('organization_id', 7),
        [
          { name: 'post.updated', record: { title: 'u', views: 3 }, changes: ['title', 'views'] },
          { name: 'post.updated', record: { title: 'u', views: 3 }, changes: ['title', 'views'] },
        ],
      );
      await expectEvents(atr, () => models.Post.query().increment('views', 2).where('title', 'u'), [
        { name: 'post.updated', record: { views: 5 }, changes: ['views'] },
        { name: 'post.updated', record: { views: 5 }, changes: ['views'] },
      ]);
    });

    it('announces the rows a patch matched even when it changes the column of its own where-clause', async () => {
      await seed({ title: 'draft', organization_id: 7 }, { title: 'draft', organization_id: 7 }, { title: 'kept', organization_id: 7 });
      await expectEvents(atr, () => models.Post.query().patch({ title: 'published' }).where('title', 'draft'), [
        { name: 'post.updated', record: { title: 'published' }, changes: ['title'] },
        { name: 'post.updated', record: { title: 'published' }, changes: ['title'] },
      ]);
    });

    it('publishes nothing for a write that matched no row', async () => {
      await expectNoEvents(atr, async () => {
        await models.Post.query().patch({ title: 'none' }).where('organization_id', 999);
        await models.Post.query().delete().where('organization_id', 999);
      });
    });

    it('moves a row between scopes: destroyed with its id only in the old scope, updated with the full row in the new one', async () => {
      const [post] = await seed({ title: 'moving', organization_id: 7 });
      const published = await expectEvents(atr, () => models.Post.query().patch({ organization_id: 8 }).where('id', post!.id), [
        { name: 'post.destroyed', scope: 'organization.7' },
        { name: 'post.updated', scope: 'organization.8', record: { id: post!.id, title: 'moving', organization_id: 8 }, changes: ['organization_id'] },
      ]);
      assert.deepEqual(published[0]!.message.record, { id: post!.id });
    });

    it('moves every row of a query-level patch to its new scope', async () => {
      await seed({ title: 'a', organization_id: 7 }, { title: 'b', organization_id: 7 });
      await expectEvents(atr, () => models.Post.query().patch({ organization_id: 9 }).where('organization_id', 7), [
        { name: 'post.destroyed', scope: 'organization.7' },
        { name: 'post.updated', scope: 'organization.9', record: { title: 'a' } },
        { name: 'post.destroyed', scope: 'organization.7' },
        { name: 'post.updated', scope: 'organization.9', record: { title: 'b' } },
      ]);
    });

    it('publishes an instance delete as destroyed with the full row', async () => {
      const [post] = await seed({ title: 'bye', organization_id: 7 });
      await expectEvents(atr, () => post!.$query().delete(), [
        { name: 'post.destroyed', scope: 'organization.7', record: { id: post!.id, title: 'bye', organization_id: 7 }, without: ['password_hash'] },
      ]);
    });

    if (dialect === 'postgres') {
      it('publishes one post.created per row of an array insert', async () => {
        await expectEvents(
          atr,
          () => models.Post.query().insert([
            { title: 'one', organization_id: 7 },
            { title: 'two', organization_id: 8 },
          ]),
          [
            { name: 'post.created', scope: 'organization.7', record: { title: 'one', views: 0 } },
            { name: 'post.created', scope: 'organization.8', record: { title: 'two', views: 0 } },
          ],
        );
      });
    } else {
      it('refuses an array insert loudly (Objection batch-inserts on PostgreSQL only), publishing nothing', async () => {
        await expectNoEvents(atr, () =>
          assert.rejects(
            async () => {
              await models.Post.query().insert([
                { title: 'one', organization_id: 7 },
                { title: 'two', organization_id: 8 },
              ]);
            },
            /batch insert only works with Postgresql/,
          ),
        );
      });
    }

    it('publishes every row of an insertGraph, each in its scope', async () => {
      // Objection may insert siblings concurrently: their events follow the order the rows were written.
      const published = await expectEvents(
        atr,
        () =>
          models.Post.query().insertGraph({
            title: 'graph',
            organization_id: 7,
            comments: [
              { body: 'c1', organization_id: 7 },
              { body: 'c2', organization_id: 7 },
            ],
          } as never),
        [
          { name: 'post.created', scope: 'organization.7', record: { title: 'graph' } },
          { name: 'comment.created', scope: 'organization.7' },
          { name: 'comment.created', scope: 'organization.7' },
        ],
      );
      const postId = (published[0]!.message.record as { id: number }).id;
      const comments = published.slice(1).map((p) => p.message.record as { body: string; post_id: number });
      assert.deepEqual(comments.map((c) => c.body).sort(), ['c1', 'c2']);
      assert.deepEqual(comments.map((c) => c.post_id), [postId, postId]);
    });

    it('publishes the updates, inserts and deletes of an upsertGraph, the deleted rows included', async () => {
      const post = await models.Post.query().insertGraph({
        title: 'graph',
        organization_id: 7,
        comments: [
          { body: 'keep', organization_id: 7 },
          { body: 'drop', organization_id: 7 },
        ],
      } as never);
      await captureEvents(atr, () => undefined);
      const keep = post.comments!.find((c) => c.body === 'keep')!;
      const drop = post.comments!.find((c) => c.body === 'drop')!;
      const published = await captureEvents(atr, () =>
        models.Post.transaction(async (trx) =>
          models.Post.query(trx).upsertGraph({
            id: post.id,
            title: 'graph 2',
            organization_id: 7,
            comments: [{ id: keep.id, body: 'kept, edited', organization_id: 7 }, { body: 'added', organization_id: 7 }],
          } as never),
        ),
      );
      const seen = published.published.map((p) => `${p.name} ${JSON.stringify((p.message.record as { body?: string; title?: string; id: number }).body ?? (p.message.record as { title?: string }).title ?? (p.message.record as { id: number }).id)}`).sort();
      assert.deepEqual(seen, [
        'comment.created "added"',
        'comment.destroyed "drop"',
        'comment.updated "kept, edited"',
        'post.updated "graph 2"',
      ]);
      const destroyed = published.published.find((p) => p.name === 'comment.destroyed')!;
      assert.equal((destroyed.message.record as { id: number }).id, drop.id);
      assert.equal(destroyed.scope, 'organization.7');
    });

    it('publishes destroyed for the rows of a related query delete', async () => {
      const post = await models.Post.query().insertGraph({
        title: 'p',
        organization_id: 7,
        comments: [
          { body: 'x', organization_id: 7 },
          { body: 'y', organization_id: 7 },
        ],
      } as never);
      await captureEvents(atr, () => undefined);
      const published = await expectEvents(atr, () => post.$relatedQuery('comments').delete(), [
        { name: 'comment.destroyed', scope: 'organization.7' },
        { name: 'comment.destroyed', scope: 'organization.7' },
      ]);
      assert.deepEqual(published.map((p) => (p.message.record as { body: string }).body).sort(), ['x', 'y']);
    });

    it('reports a query-level patch outside a transaction that wrote rows a concurrent insert added after the read', async () => {
      await seed({ title: 'race', organization_id: 7 }, { title: 'race', organization_id: 7 });
      const other = db.other;
      class RacedPost extends models.Post {
        static override async beforeUpdate(args: Parameters<typeof models.Post.beforeUpdate>[0]) {
          await super.beforeUpdate(args);
          // Another connection adds a matching row between atr's read and the write.
          await other(models.Post.tableName).insert({ title: 'race', organization_id: 7 });
        }
      }
      await expectEvents(atr, () => RacedPost.query().patch({ body: 'raced' }).where('title', 'race'), [
        { name: 'raced_post.updated' },
        { name: 'raced_post.updated' },
      ]);
      assert.equal(await models.Post.query().where('body', 'raced').resultSize(), 3);
      assert.deepEqual(errors.map((e) => e.message), [
        'RacedPost: 3 rows were updated but 2 announced (a concurrent write matched meanwhile); run bulk writes in a transaction',
      ]);
      errors.length = 0;
    });

    it('publishes nothing for a write that bypasses Objection (raw knex): a documented gap', async () => {
      await seed({ title: 'raw', organization_id: 7 });
      await expectNoEvents(atr, () => db.knex(models.Post.tableName).update({ title: 'raw 2' }));
    });

    it('reports a row whose scope column is null and publishes the rest', async () => {
      await expectEvents(
        atr,
        async () => {
          await models.Post.query().insert({ title: 'no scope', organization_id: null });
          await models.Post.query().insert({ title: 'scoped', organization_id: 7 });
        },
        [{ name: 'post.created', scope: 'organization.7', record: { title: 'scoped' } }],
      );
      assert.equal(errors.length, 1);
      assert.equal((errors[0] as { code?: string }).code, 'ATR_ERR_EVENT_SCOPE_MISSING');
      errors.length = 0;
    });
  });
}
