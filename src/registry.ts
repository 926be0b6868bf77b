/**
 * The event names of every publishable model, as the old gem's
 * `websocket_channels`. A model registers itself the first time it is used
 * (or with `registry.register(Model)`); nothing loads every model to learn them.
 */
import type { Action } from './event';
import { routingKeyOf } from './routing';

export interface RegisteredModel {
  resourceKey: string;
  actions: readonly Action[];
}

export class Registry {
  private readonly models = new Map<string, RegisteredModel>();
  private readonly extra = new Set<string>();

  /** Adds a model's resource key and actions (idempotent). */
  add(model: RegisteredModel): void {
    this.models.set(model.resourceKey, { resourceKey: model.resourceKey, actions: [...model.actions] });
  }

  /** Registers Publishable model classes, or event names of your own (`'invoice.paid'`). */
  register(...items: Array<string | { atrDescribe(): RegisteredModel }>): this {
    for (const item of items) {
      if (typeof item === 'string') this.extra.add(item);
      else this.add(item.atrDescribe());
    }
    return this;
  }

  /** Every event name: `['post.created', 'post.updated', ...]`, sorted. */
  channels(): string[] {
    const names = new Set(this.extra);
    for (const m of this.models.values()) for (const a of m.actions) names.add(`${m.resourceKey}.${a}`);
    return [...names].sort();
  }

  /** The same names under a scope: `scopedChannels('organization.7')` → `['organization.7.post.created', ...]`. */
  scopedChannels(scope: string): string[] {
    return this.channels().map((name) => routingKeyOf(scope, name));
  }

  /** @internal */
  clear(): void {
    this.models.clear();
    this.extra.clear();
  }
}

/** The process-wide registry. */
export const registry = new Registry();
