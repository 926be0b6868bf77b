/**
 * The Objection mixin. A Publishable model publishes `<resource>.created`,
 * `<resource>.updated` and `<resource>.destroyed` for every row it inserts,
 * updates or deletes, instance or query writes alike, once the outermost
 * transaction commits.
 *
 * The work is done in Objection's static query hooks (see model-hooks.ts),
 * which run for instance and query writes alike; the instance hooks
 * (`$afterInsert`, ...) stay free for the app. Each hook awaits `super` first
 * and returns what it returned.
 */
import type { Model, StaticHookArguments } from 'objection';
import { describe } from './config';
import { AtrModelError, codes } from './errors';
import type { PublishableOptions } from './model-config';
import { describeModel, modelConfig } from './model-config';
import type { HookArgs, ModelClassLike } from './model-hooks';
import { onAfterDelete, onAfterInsert, onAfterUpdate, onBeforeDelete, onBeforeInsert, onBeforeUpdate } from './model-hooks';
import type { RegisteredModel } from './registry';

/** The statics Publishable adds (and reads) on a model class. */
export interface PublishableStatics extends PublishableOptions {
  /** The resource key and actions, for `registry.register(Post)`; checks the class's configuration. */
  atrDescribe(): RegisteredModel;
}

const PUBLISHABLE = Symbol.for('atr.publishable');

/**
 * Makes an Objection model class publish its writes. Works on `Model`, on a
 * base class of your own, and through Objection's `mixin()`/`compose()`;
 * applying it twice changes nothing.
 *
 * Static options: `publicationScope` (columns, `['organization_id']`),
 * `resourceName`, `publishableActions`, `publishedAttributes` (an allow-list
 * applied after `$formatJson`), `atr` (an Atr instance; default: `configure()`'s),
 * `publishFromReturning` (PostgreSQL: take inserted rows from RETURNING; see model-returning.ts).
 * A subclass that overrides `beforeUpdate`, `afterUpdate`, `beforeDelete`,
 * `afterDelete` or `afterInsert` must call `super` (`beforeInsert` should: without
 * it, inserts are read back instead of returned).
 *
 * @example
 * class Post extends Publishable(Model) {
 *   static tableName = 'posts';
 *   static publicationScope = ['organization_id'];
 * }
 * await Post.query().insert({ title: 'Hi', organization_id: 7 });
 * // → organization.7.post.created, after the commit
 */
export function Publishable<M extends typeof Model>(Base: M): M & PublishableStatics {
  if (typeof Base !== 'function' || typeof (Base as { query?: unknown }).query !== 'function' || typeof (Base as { afterInsert?: unknown }).afterInsert !== 'function') {
    throw new AtrModelError(codes.MODEL_CLASS, `Publishable() takes an Objection Model class (Objection 3); got ${describe(Base)}`);
  }
  if ((Base as unknown as Record<symbol, unknown>)[PUBLISHABLE]) return Base as M & PublishableStatics;
  const Parent = Base as unknown as typeof Model;
  type Args = StaticHookArguments<Model>;
  const cls = (self: unknown) => self as ModelClassLike;
  const hook = (args: Args) => args as unknown as HookArgs;

  return class extends Parent {
    static readonly [PUBLISHABLE] = true;

    static override query(...args: unknown[]): never {
      // The first use checks the configuration and registers the event names.
      modelConfig(this as never);
      return (super.query as (...a: unknown[]) => never).apply(this, args);
    }

    static atrDescribe(): RegisteredModel {
      return describeModel(this as never);
    }

    // The insert hooks stay synchronous where they can: every insert pays
    // for each promise and turn they add.
    static override beforeInsert(args: Args): unknown {
      const result: unknown = super.beforeInsert(args);
      if (isThenable(result)) {
        return Promise.resolve(result).then((value) => {
          onBeforeInsert(cls(this), hook(args));
          return value;
        });
      }
      onBeforeInsert(cls(this), hook(args));
      return result;
    }

    static override afterInsert(args: Args): unknown {
      const result: unknown = super.afterInsert(args);
      if (isThenable(result)) return Promise.resolve(result).then((value) => onAfterInsert(cls(this), hook(args)).then(() => value));
      return onAfterInsert(cls(this), hook(args)).then(() => result);
    }

    static override async beforeUpdate(args: Args): Promise<unknown> {
      const result = await super.beforeUpdate(args);
      await onBeforeUpdate(cls(this), hook(args));
      return result;
    }

    static override async afterUpdate(args: Args): Promise<unknown> {
      const result = await super.afterUpdate(args);
      await onAfterUpdate(cls(this), hook(args));
      return result;
    }

    static override async beforeDelete(args: Args): Promise<unknown> {
      const result = await super.beforeDelete(args);
      await onBeforeDelete(cls(this), hook(args));
      return result;
    }

    static override async afterDelete(args: Args): Promise<unknown> {
      const result = await super.afterDelete(args);
      await onAfterDelete(cls(this), hook(args));
      return result;
    }
  } as unknown as M & PublishableStatics;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * true when a model class publishes its writes.
 *
 * @example
 * isPublishable(Post); // true for class Post extends Publishable(Model)
 */
export function isPublishable(modelClass: unknown): boolean {
  return typeof modelClass === 'function' && Boolean((modelClass as unknown as Record<symbol, unknown>)[PUBLISHABLE]);
}
