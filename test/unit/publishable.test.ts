/**
 * The Publishable mixin on SQLite in memory and the memory broker: static
 * options and their errors, the registry, base-class chains and Objection's
 * mixin()/compose(), hooks that chain to super.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import Knex from 'knex';
import { compose, mixin, Model } from 'objection';
import { configure, createAtr, resetDefaultAtr } from '../../src/atr';
import { AtrModelError } from '../../src/errors';
import { silentLogger } from '../../src/logger';
import { isPublishable, Publishable } from '../../src/publishable';
import { registry } from '../../src/registry';
import { captureEvents, expectEvents } from '../../src/testing';

const knex = Knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
const atr = createAtr({ logger: silentLogger });

function bound<T extends typeof Model>(cls: T): T {
  cls.knex(knex);
  return cls;
}

describe('Publishable', () => {
  before(async () => {
    await knex.schema.createTable('items', (t) => {
      t.increments('id');
      t.integer('organization_id').nullable();
      t.integer('user_id').nullable();
      t.string('title');
    });
    await knex.schema.createTable('memberships', (t) => {
      t.integer('user_id');
      t.integer('group_id');
      t.integer('organization_id');
      t.string('role');
      t.primary(['user_id', 'group_id']);
    });
  });
  after(async () => {
    await atr.close();
    await knex.destroy();
  });
  beforeEach(async () => {
    await knex('items').delete();
    await knex('memberships').delete();
  });

  it('keeps the class name and publishes <resource>.created with recordType the class name', async () => {
    class BlogPost extends Publishable(Model) {
      static override tableName = 'items';
      static override atr = atr;
    }
    bound(BlogPost);
    assert.equal(BlogPost.name, 'BlogPost');
    assert.ok(isPublishable(BlogPost));
    const [event] = await expectEvents(atr, () => BlogPost.query().insert({ title: 'x' }), [{ name: 'blog_post.created', scope: '' }]);
    assert.equal(event!.message.recordType, 'BlogPost');
    assert.equal(event!.routingKey, 'blog_post.created');
  });

  it('chains several publicationScope columns into one scope', async () => {
    class Note extends Publishable(Model) {
      static override tableName = 'items';
      static override publicationScope = ['organization_id', 'user_id'];
      static override atr = atr;
    }
    bound(Note);
    await expectEvents(atr, () => Note.query().insert({ title: 'x', organization_id: 7, user_id: 3 }), [
      { name: 'note.created', scope: 'organization.7.user.3' },
    ]);
  });

  it('uses resourceName and publishes only the publishableActions', async () => {
    class Thing extends Publishable(Model) {
      static override tableName = 'items';
      static override resourceName = 'gadget';
      static override publishableActions = ['created', 'destroyed'];
      static override atr = atr;
    }
    bound(Thing);
    await expectEvents(
      atr,
      async () => {
        const thing = await Thing.query().insert({ title: 'x' });
        await thing.$query().patch({ title: 'y' });
        await thing.$query().delete();
      },
      [{ name: 'gadget.created' }, { name: 'gadget.destroyed' }],
    );
  });

  it('registers a model on first use and through registry.register()', () => {
    class Lazy extends Publishable(Model) {
      static override tableName = 'items';
      static override resourceName = 'lazy_thing';
      static override publishableActions = ['updated'];
    }
    class Eager extends Publishable(Model) {
      static override tableName = 'items';
      static override resourceName = 'eager_thing';
    }
    assert.equal(registry.channels().includes('lazy_thing.updated'), false);
    bound(Lazy).query();
    assert.equal(registry.channels().includes('lazy_thing.updated'), true);
    assert.equal(registry.channels().includes('lazy_thing.created'), false);
    registry.register(Eager);
    assert.ok(registry.scopedChannels('organization.7').includes('organization.7.eager_thing.destroyed'));
  });

  it('refuses a wrong publicationScope, resourceName or publishableActions on first use, naming the class and option', () => {
    class BadScope extends Publishable(Model) {
      static override tableName = 'items';
      static override publicationScope = [42 as unknown as string];
    }
    class BadName extends Publishable(Model) {
      static override tableName = 'items';
      static override resourceName = 'post.created';
    }
    class BadActions extends Publishable(Model) {
      static override tableName = 'items';
      static override publishableActions = ['created', 'archived'];
    }
    assert.throws(() => bound(BadScope).query(), {
      name: 'AtrModelError',
      code: 'ATR_ERR_MODEL_PUBLICATION_SCOPE',
      message: "BadScope.publicationScope must be an array of column names, such as ['organization_id']; got [42]",
    });
    assert.throws(() => bound(BadName).query(), {
      code: 'ATR_ERR_MODEL_RESOURCE_NAME',
      message: 'BadName.resourceName must be letters, digits and "_", such as "blog_post"; got "post.created"',
    });
    assert.throws(() => registry.register(BadActions), (err: unknown) => err instanceof AtrModelError && err.code === 'ATR_ERR_MODEL_PUBLISHABLE_ACTIONS' && /BadActions\.publishableActions/.test(err.message));
    class BadReturning extends Publishable(Model) {
      static override tableName = 'items';
      static override publishFromReturning = 'yes' as never;
    }
    assert.throws(() => bound(BadReturning).query(), {
      code: 'ATR_ERR_MODEL_CLASS',
      message: 'BadReturning.publishFromReturning must be true or false; got "yes"',
    });
  });

  it("honours a toJSON() override as well as $formatJson: what it removes is never published", async () => {
    class Secretive extends Publishable(Model) {
      static override tableName = 'items';
      static override atr = atr;
      override toJSON() {
        const json = super.toJSON() as Record<string, unknown>;
        delete json.user_id;
        return json as never;
      }
    }
    bound(Secretive);
    await expectEvents(
      atr,
      async () => {
        const row = await Secretive.query().insert({ title: 'x', user_id: 42 });
        await row.$query().patch({ user_id: 43, title: 'y' });
        await row.$query().delete();
      },
      [
        { name: 'secretive.created', record: { title: 'x' }, without: ['user_id'] },
        { name: 'secretive.updated', record: { title: 'y' }, changes: ['title'], without: ['user_id'] },
        { name: 'secretive.destroyed', without: ['user_id'] },
      ],
    );
  });

  it('refuses what is not an Objection model class', () => {
    assert.throws(() => Publishable(class NotAModel {} as never), {
      name: 'AtrModelError',
      code: 'ATR_ERR_MODEL_CLASS',
      message: 'Publishable() takes an Objection Model class (Objection 3); got function NotAModel',
    });
  });

  it('works through a base-class chain, and a subclass publishes under its own name', async () => {
    class BaseModel extends Publishable(Model) {
      static override atr = atr;
    }
    class Article extends BaseModel {
      static override tableName = 'items';
      static override publicationScope = ['organization_id'];
    }
    class FeaturedArticle extends Article {}
    bound(Article);
    await expectEvents(
      atr,
      async () => {
        await Article.query().insert({ title: 'a', organization_id: 1 });
        await FeaturedArticle.query().insert({ title: 'f', organization_id: 1 });
      },
      [
        { name: 'article.created', scope: 'organization.1' },
        { name: 'featured_article.created', scope: 'organization.1' },
      ],
    );
  });

  it("works through Objection's mixin() and compose(), and applying it twice publishes once", async () => {
    const Stamped = <M extends typeof Model>(Base: M) =>
      class extends (Base as typeof Model) {
        override $beforeInsert() {
          (this as unknown as { title: string }).title += ' (stamped)';
        }
      } as unknown as M;
    class Mixed extends mixin(Model, [Publishable, Stamped]) {
      static override tableName = 'items';
    }
    class Composed extends compose(Stamped, Publishable, Publishable)(Model) {
      static override tableName = 'items';
    }
    (Mixed as unknown as { atr: typeof atr }).atr = atr;
    (Composed as unknown as { atr: typeof atr }).atr = atr;
    bound(Mixed);
    bound(Composed);
    await expectEvents(
      atr,
      async () => {
        await Mixed.query().insert({ title: 'm' });
        await Composed.query().insert({ title: 'c' });
      },
      [
        { name: 'mixed.created', record: { title: 'm (stamped)' } },
        { name: 'composed.created', record: { title: 'c (stamped)' } },
      ],
    );
  });

  it("calls the app's own instance and static hooks, and their return values stand", async () => {
    const calls: string[] = [];
    class Hooked extends Publishable(Model) {
      static override tableName = 'items';
      static override atr = atr;
      override $afterInsert() {
        calls.push('$afterInsert');
      }
      override $afterUpdate() {
        calls.push('$afterUpdate');
      }
      static override async afterInsert(args: Parameters<typeof Model.afterInsert>[0]) {
        await super.afterInsert(args);
        calls.push('afterInsert');
      }
      static override async afterDelete(args: Parameters<typeof Model.afterDelete>[0]) {
        await super.afterDelete(args);
        return 'custom result';
      }
    }
    bound(Hooked);
    let deleted: unknown;
    await expectEvents(
      atr,
      async () => {
        const row = await Hooked.query().insert({ title: 'h' });
        await row.$query().patch({ title: 'h2' });
        deleted = await Hooked.query().delete().where('id', row.$id());
      },
      [{ name: 'hooked.created' }, { name: 'hooked.updated' }, { name: 'hooked.destroyed' }],
    );
    assert.deepEqual(calls, ['$afterInsert', 'afterInsert', '$afterUpdate']);
    assert.equal(deleted, 'custom result');
  });

  it('follows rows with a composite id through updates, scope moves and deletes', async () => {
    class Membership extends Publishable(Model) {
      static override tableName = 'memberships';
      static override idColumn = ['user_id', 'group_id'];
      static override publicationScope = ['organization_id'];
      static override atr = atr;
    }
    bound(Membership);
    const published = await expectEvents(
      atr,
      async () => {
        await Membership.query().insert({ user_id: 1, group_id: 2, organization_id: 7, role: 'member' });
        await Membership.query().insert({ user_id: 1, group_id: 3, organization_id: 7, role: 'member' });
        await Membership.query().patch({ role: 'admin' }).where('group_id', 2);
        await Membership.query().patch({ organization_id: 8 }).where('group_id', 3);
        await Membership.query().delete().where('user_id', 1);
      },
      [
        { name: 'membership.created', scope: 'organization.7', record: { group_id: 2 } },
        { name: 'membership.created', scope: 'organization.7', record: { group_id: 3 } },
        { name: 'membership.updated', scope: 'organization.7', record: { group_id: 2, role: 'admin' }, changes: ['role'] },
        { name: 'membership.destroyed', scope: 'organization.7' },
        { name: 'membership.updated', scope: 'organization.8', record: { group_id: 3 }, changes: ['organization_id'] },
        { name: 'membership.destroyed', scope: 'organization.7', record: { group_id: 2, role: 'admin' } },
        { name: 'membership.destroyed', scope: 'organization.8', record: { group_id: 3 } },
      ],
    );
    assert.deepEqual(published[3]!.message.record, { user_id: 1, group_id: 3 });
  });

  it('reports an update of the id itself, which it cannot follow, rather than announcing nothing silently', async () => {
    const errors: Error[] = [];
    const own = createAtr({ logger: silentLogger, onError: (err) => errors.push(err) });
    class Renumbered extends Publishable(Model) {
      static override tableName = 'items';
      static override atr = own;
    }
    bound(Renumbered);
    try {
      const row = await Renumbered.query().insert({ title: 'x' });
      await captureEvents(own, () => Renumbered.query().patch({ id: 999 }).where('id', row.$id()));
      assert.deepEqual(errors.map((e) => e.message), [
        `Renumbered: 1 updated row(s) could not be found by id after the update (an update of the id itself?); no event for ${row.$id()}`,
      ]);
    } finally {
      await own.close();
    }
  });

  it('reports a subclass beforeDelete that does not call super, rather than announcing nothing silently', async () => {
    const errors: Error[] = [];
    const own = createAtr({ logger: silentLogger, onError: (err) => errors.push(err) });
    class Careless extends Publishable(Model) {
      static override tableName = 'items';
      static override atr = own;
      static override async beforeDelete() {}
    }
    bound(Careless);
    try {
      await Careless.query().insert({ title: 'x' });
      await captureEvents(own, () => Careless.query().delete());
      assert.equal(await Careless.query().resultSize(), 0);
      assert.equal(errors.length, 1);
      assert.equal((errors[0] as { code?: string }).code, 'ATR_ERR_MODEL_HOOKS');
    } finally {
      await own.close();
    }
  });

  it('uses the configured Atr when the model sets none, and writes without one (with a warning)', async () => {
    class Plain extends Publishable(Model) {
      static override tableName = 'items';
    }
    bound(Plain);
    resetDefaultAtr();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      await Plain.query().insert({ title: 'unconfigured' });
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /Plain is Publishable but atr is not configured/);
      const configured = configure({ logger: silentLogger });
      try {
        await expectEvents(configured, () => Plain.query().insert({ title: 'configured' }), [{ name: 'plain.created' }]);
      } finally {
        await configured.close();
        resetDefaultAtr();
      }
    } finally {
      process.off('warning', onWarning);
    }
    assert.equal(await Plain.query().resultSize(), 2);
  });
});
