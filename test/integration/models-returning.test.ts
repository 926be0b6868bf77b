/**
 * How Publishable learns an inserted row: by default from a read-back by id;
 * with `publishFromReturning` from `INSERT … RETURNING *` on PostgreSQL,
 * still from a read-back elsewhere (MariaDB has no RETURNING; on SQLite a
 * read-back through a statement prepared once costs less) or where the query
 * or the knex instance asks for something of its own. Either way the event carries the row as stored
 * and the app's insert result is what Objection alone gives.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Knex from 'knex';
import { Model } from 'objection';
import type { Atr } from '../../src/atr';
import { Publishable } from '../../src/publishable';
import { captureEvents, settled } from '../../src/testing';
import { DIALECTS, makeModels, useModelSuite } from '../helpers/model-dialects';
import type { Database } from '../helpers/model-dialects';
import { POSTGRES_URL } from '../helpers/services';

/** The record of a captured model event. */
function rec(published: { event: unknown }): Record<string, unknown> {
  return (published.event as { record: Record<string, unknown> }).record;
}

function definedKeys(model: unknown): string[] {
  return Object.entries(model as object).filter(([, value]) => value !== undefined).map(([key]) => key).sort();
}

const RETURNING: Record<string, boolean> = { sqlite: false, postgres: true, mariadb: false };

/** The SQL statements a block sends through `knex`. */
async function statementsOf(knex: Knex.Knex, block: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (query: { sql: string }) => seen.push(query.sql);
  knex.on('query', listener);
  try {
    await block();
  } finally {
    knex.off('query', listener);
  }
  return seen;
}

for (const dialect of DIALECTS) {
  describe(`how inserted rows are learned on ${dialect}`, () => {
    let db: Database;
    let atr: Atr;
    let models: ReturnType<typeof makeModels>;
    const errors: Error[] = [];

    /** The suite's models with Post choosing RETURNING (Comment keeps the default). */
    let defaults: ReturnType<typeof makeModels>;
    useModelSuite(dialect, 'atr_mrt', errors, (m) => [m.Post], (suite) => {
      ({ db, atr } = suite);
      defaults = suite.models;
      class ReturningPost extends suite.models.Post {
        static override resourceName = 'post';
        static override publishFromReturning = true;
      }
      models = { ...suite.models, Post: ReturningPost };
    });

    it('reads an inserted row back by default: one SELECT by id, and the event holds the database defaults', async () => {
      const { Post } = defaults;
      const statements = await statementsOf(db.knex, async () => {
        const { published } = await captureEvents(atr, () => Post.query().insert({ organization_id: 4, title: 'default' }));
        assert.equal(published.length, 1);
        assert.equal(rec(published[0]!).views, 0);
      });
      assert.doesNotMatch(statements.find((sql) => /^insert/i.test(sql))!, /returning \*/i);
      assert.equal(statements.filter((sql) => /^select/i.test(sql) && sql.includes(Post.tableName)).length, 1);
    });

    it(`with publishFromReturning ${RETURNING[dialect] ? 'takes the row from the insert itself, with no read-back' : 'still reads the row back'}; the event holds the database's defaults, the app's result only what Objection gives`, async () => {
      const { Post } = models;
      class PlainPost extends Model {
        static override tableName = Post.tableName;
      }
      const plain = await PlainPost.query(db.knex).insert({ organization_id: 4, title: 'plain' });
      let result: unknown;
      const statements = await statementsOf(db.knex, async () => {
        const { published } = await captureEvents(atr, async () => {
          result = await Post.query().insert({ organization_id: 4, title: 'live' });
        });
        assert.equal(published.length, 1);
        const record = rec(published[0]!);
        assert.equal(record.title, 'live');
        assert.equal(record.views, 0, 'the column default is in the event');
        assert.ok(record.created_at, 'the timestamp default is in the event');
        assert.equal(record.password_hash, undefined, '$formatJson still applies');
      });
      const inserts = statements.filter((sql) => /^insert/i.test(sql));
      const selects = statements.filter((sql) => /^select/i.test(sql) && sql.includes(Post.tableName));
      assert.equal(inserts.length, 1);
      if (RETURNING[dialect]) {
        assert.match(inserts[0]!, /returning \*/i);
        assert.deepEqual(selects, [], 'no read-back');
      } else {
        assert.equal(selects.length, 1, 'one read-back');
      }
      // What the app gets back holds what a plain Objection insert holds: no columns added.
      assert.deepEqual(definedKeys(result), definedKeys(plain));
      assert.equal((result as { id: number }).id, (plain as unknown as { id: number }).id + 1);
    });

    it('leaves a query that asks for its own returning alone and still publishes the whole row', async () => {
      const { Post } = models;
      let result: unknown;
      const statements = await statementsOf(db.knex, async () => {
        const { published } = await captureEvents(atr, async () => {
          result = await Post.query().insert({ organization_id: 5, title: 'own returning' }).returning('id');
        });
        assert.equal(published.length, 1);
        assert.equal((rec(published[0]!)).views, 0);
      });
      assert.doesNotMatch(statements.find((sql) => /^insert/i.test(sql))!, /returning \*/i);
      assert.equal(typeof (result as { id: unknown }).id, 'number');
      assert.equal((result as { views?: unknown }).views, undefined);
    });

    it('publishes every row of a graph insert and of a transaction, in order, after the commit', async () => {
      const { Post } = models;
      const { published } = await captureEvents(atr, () =>
        Post.transaction(async (trx) => {
          await Post.query(trx).insert({ organization_id: 6, title: 'one' });
          await Post.query(trx).insertGraph({ organization_id: 6, title: 'two', comments: [{ organization_id: 6, body: 'c' }] } as never);
        }),
      );
      assert.deepEqual(
        published.map((e) => `${e.name}:${String(rec(e).title ?? rec(e).body)}`),
        ['post.created:one', 'post.created:two', 'comment.created:c'],
      );
      for (const event of published.filter((e) => e.name === 'post.created')) assert.equal(rec(event).views, 0);
    });

    it('publishes the row of a relation insert and of insertAndFetch, and gives the app what Objection gives', async () => {
      const { Post, Comment } = models;
      const post = await Post.query().insert({ organization_id: 9, title: 'parent' });
      const { published, result } = await captureEvents(atr, async () => {
        const comment = await post.$relatedQuery('comments').insert({ organization_id: 9, body: 'related' } as never);
        const fetched = await Post.query().insertAndFetch({ organization_id: 9, title: 'fetched' });
        return { comment, fetched };
      });
      assert.deepEqual(published.map((e) => e.name), ['comment.created', 'post.created']);
      assert.equal(rec(published[0]!).post_id, post.id);
      assert.equal(rec(published[0]!).body, 'related');
      assert.equal(rec(published[1]!).views, 0);
      assert.equal((result.comment as unknown as { post_id: number }).post_id, post.id);
      assert.equal(result.fetched.views, 0, 'insertAndFetch still fetches the whole row');
      assert.equal(result.fetched.title, 'fetched');
      await db.knex(Comment.tableName).delete();
    });

    it('reads the row back when a subclass beforeInsert skips super', async () => {
      const { Post } = models;
      class Careless extends Post {
        static override async beforeInsert(): Promise<void> {}
      }
      const { published } = await captureEvents(atr, () => Careless.query().insert({ organization_id: 7, title: 'careless' }));
      assert.equal(published.length, 1);
      assert.equal(rec(published[0]!).views, 0);
    });

    it('by default, publishes what a trigger wrote into the inserted row', async () => {
      const table = `atr_mrt_trig_${dialect}`;
      await db.knex.schema.dropTableIfExists(table);
      await db.knex.schema.createTable(table, (t) => {
        t.increments('id').primary();
        t.integer('organization_id');
        t.string('slug').nullable();
      });
      // Each dialect's way to fill a column by trigger: SQLite's BEFORE triggers cannot change the row.
      if (dialect === 'sqlite') {
        await db.knex.raw(`create trigger ${table}_ai after insert on ${table} begin update ${table} set slug = 'slug-' || new.organization_id where id = new.id; end`);
      } else if (dialect === 'postgres') {
        await db.knex.raw(`create or replace function ${table}_f() returns trigger language plpgsql as $$ begin update ${table} set slug = 'slug-' || new.organization_id where id = new.id; return null; end $$`);
        await db.knex.raw(`create trigger ${table}_ai after insert on ${table} for each row execute function ${table}_f()`);
      } else {
        await db.knex.raw(`create trigger ${table}_bi before insert on ${table} for each row set new.slug = concat('slug-', new.organization_id)`);
      }
      class Tagged extends Publishable(Model) {
        static override tableName = table;
        static override publicationScope = ['organization_id'];
        static override atr = atr;
      }
      try {
        const { published } = await captureEvents(atr, () => Tagged.query(db.knex).insert({ organization_id: 3 }));
        assert.equal(published.length, 1);
        assert.equal(rec(published[0]!).slug, 'slug-3');
      } finally {
        await db.knex.schema.dropTableIfExists(table);
        if (dialect === 'postgres') await db.knex.raw(`drop function if exists ${table}_f()`);
      }
    });

    if (RETURNING[dialect]) {
      it('with publishFromReturning, announces nothing for a row that onConflict().ignore() skipped (RETURNING says what was inserted)', async () => {
        const { Post } = models;
        const first = await Post.query().insert({ organization_id: 4, title: 'first' });
        const { published } = await captureEvents(atr, () => Post.query().insert({ id: first.id, organization_id: 4, title: 'again' } as never).onConflict('id').ignore());
        assert.deepEqual(published, []);
      });
    }

    if (dialect === 'postgres') {
      it('by default, lets the insert of a role that cannot read every column succeed, and reports the refused read-back', async () => {
        const table = 'atr_mrt_grants';
        await db.knex.raw(`drop table if exists ${table}; drop role if exists atr_mrt_app`);
        await db.knex.raw(`create role atr_mrt_app login`);
        await db.knex.raw(`create table ${table} (id serial primary key, organization_id int, title text, note text default 'internal')`);
        await db.knex.raw(`grant insert (organization_id, title) on ${table} to atr_mrt_app; grant select (id, organization_id, title) on ${table} to atr_mrt_app; grant usage on sequence ${table}_id_seq to atr_mrt_app`);
        const url = new URL(POSTGRES_URL);
        url.username = 'atr_mrt_app';
        const asApp = Knex({ client: 'pg', connection: url.toString() });
        class Restricted extends Publishable(Model) {
          static override tableName = table;
          static override publicationScope = ['organization_id'];
          static override atr = atr;
        }
        try {
          const row = await Restricted.query(asApp).insert({ organization_id: 5, title: 'granted' });
          assert.equal(typeof (row as unknown as { id: unknown }).id, 'number');
          await settled(atr);
          // The read-back is refused and reported; the write stands.
          assert.match(errors.map((e) => e.message).join('\n'), /permission denied/);
          errors.length = 0;
        } finally {
          await asApp.destroy();
          await db.knex.raw(`drop table if exists ${table}; drop role if exists atr_mrt_app`);
        }
      });
    }

    it('reads the row back when knex post-processes responses (the ids Objection expects would change shape)', async () => {
      const { Post } = models;
      const renamed = Knex({ ...db.knex.client.config, postProcessResponse: (result: unknown) => result });
      try {
        const statements = await statementsOf(renamed, async () => {
          const { published } = await captureEvents(atr, () => Post.query(renamed).insert({ organization_id: 8, title: 'post-processed' }));
          assert.equal(published.length, 1);
          assert.equal(rec(published[0]!).views, 0);
        });
        assert.doesNotMatch(statements.find((sql) => /^insert/i.test(sql))!, /returning \*/i);
      } finally {
        await renamed.destroy();
      }
    });

    if (dialect === 'sqlite') {
      it('on SQLite reads back through one statement prepared once per connection, inside the transaction, and applies postProcessResponse through knex', async () => {
        const { Post } = defaults;
        const connection = (await db.knex.client.acquireConnection()) as { prepare(sql: string): unknown };
        await db.knex.client.releaseConnection(connection);
        const prepared: string[] = [];
        const prepare = connection.prepare;
        connection.prepare = function (this: unknown, sql: string) {
          prepared.push(sql);
          return prepare.call(this, sql);
        };
        try {
          const { published } = await captureEvents(atr, () =>
            Post.transaction(db.knex, async (trx) => {
              for (const title of ['a', 'b', 'c']) await Post.query(trx).insert({ organization_id: 2, title });
            }),
          );
          assert.deepEqual(published.map((e) => [rec(e).title, rec(e).views]), [['a', 0], ['b', 0], ['c', 0]], 'each read saw its own uncommitted row');
          const reads = prepared.filter((sql) => /^select/i.test(sql) && sql.includes(Post.tableName));
          assert.equal(reads.length <= 1, true, `the read-back was prepared at most once (an earlier test may have prepared it): ${reads.join(' | ')}`);
          assert.equal(prepared.filter((sql) => /^insert/i.test(sql)).length, 3, 'knex prepared each insert');
          // A post-processing knex gets the rows as it shapes them: the knex path.
          // It marks the rows it is given, so the event shows which path read them.
          const mark = (result: unknown) =>
            Array.isArray(result) ? result.map((r) => (r && typeof r === 'object' && 'title' in r ? { ...r, title: `${String(r.title)} (post-processed)` } : r)) : result;
          const upper = Knex({ ...db.knex.client.config, postProcessResponse: mark });
          try {
            const statements = await statementsOf(upper, async () => {
              const { published: one } = await captureEvents(atr, () => Post.query(upper).insert({ organization_id: 2, title: 'pp' }));
              assert.equal(rec(one[0]!).views, 0);
              assert.equal(rec(one[0]!).title, 'pp (post-processed)', 'the read-back went through knex and its postProcessResponse');
            });
            assert.equal(statements.filter((sql) => /^select/i.test(sql)).length, 1);
          } finally {
            await upper.destroy();
          }
        } finally {
          connection.prepare = prepare;
        }
      });
    }
  });
}
