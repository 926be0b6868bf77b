/**
 * The static configuration of a Publishable model class, read through one
 * helper and checked the first time the class is used, with errors that name
 * the class and the option.
 */
import type { Atr } from './atr';
import { getAtr } from './atr';
import { AtrModelError, codes } from './errors';
import type { Action } from './event';
import { ACTIONS } from './event';
import { registry } from './registry';
import type { RegisteredModel } from './registry';
import { resourceKeyOf, scopeKey, scopeKeyOf } from './routing';

/** The statics a Publishable model may set. */
export interface PublishableOptions {
  /** Columns (model properties) that place a row's events in a scope, outermost first: `['organization_id']`. */
  publicationScope?: readonly string[] | string;
  /** The resource key in event names; default: the class name in snake case (`BlogPost` → `blog_post`). */
  resourceName?: string;
  /** The actions to publish; default all: `['created', 'updated', 'destroyed']`. */
  publishableActions?: readonly string[];
  /** An allow-list of record attributes, applied after `$formatJson`; default: everything `$formatJson` keeps. */
  publishedAttributes?: readonly string[];
  /** The Atr to publish through; default: the one set by `configure()`. */
  atr?: Atr;
  /**
   * Take inserted rows from `INSERT … RETURNING *` instead of reading them
   * back (PostgreSQL; elsewhere it reads back anyway); default false. Saves a
   * query per insert; set it only where RETURNING gives the stored row and may
   * be read: no triggers or rules that change the row after the insert, and a
   * role that may read every column (else the insert itself fails).
   */
  publishFromReturning?: boolean;
}

export interface ModelConfig {
  className: string;
  resourceKey: string;
  /** Property names of the scope columns. */
  scopeColumns: readonly string[];
  /** The scope key names (`organization`) of the scope columns. */
  scopeNames: readonly string[];
  actions: readonly Action[];
  publishedAttributes: readonly string[] | undefined;
  fromReturning: boolean;
}

interface ModelClassLike extends PublishableOptions {
  name: string;
}

const configs = new WeakMap<object, ModelConfig>();
const RESOURCE_RE = /^[a-z0-9_]+$/i;

/** The checked configuration of a model class (cached); registers the class on first use. */
export function modelConfig(modelClass: ModelClassLike): ModelConfig {
  let config = configs.get(modelClass);
  if (!config) {
    config = readConfig(modelClass);
    configs.set(modelClass, config);
    registry.add({ resourceKey: config.resourceKey, actions: config.actions });
  }
  return config;
}

/** What `registry.register(Post)` needs. */
export function describeModel(modelClass: ModelClassLike): RegisteredModel {
  const config = modelConfig(modelClass);
  return { resourceKey: config.resourceKey, actions: config.actions };
}

/** The Atr of a model class: `static atr` if set, else the configured default (undefined if there is none). */
export function atrOf(modelClass: ModelClassLike): Atr | undefined {
  const own = modelClass.atr;
  if (own !== undefined && own !== null) return own;
  try {
    return getAtr();
  } catch {
    return undefined;
  }
}

function readConfig(cls: ModelClassLike): ModelConfig {
  const className = cls.name;
  const label = className || '(anonymous class)';

  const resourceName = cls.resourceName;
  let resourceKey: string;
  if (resourceName === undefined || resourceName === null || resourceName === '') {
    if (!className) {
      throw new AtrModelError(codes.MODEL_RESOURCE_NAME, 'An anonymous Publishable model needs a static resourceName, such as "post"');
    }
    resourceKey = resourceKeyOf(className);
  } else if (typeof resourceName !== 'string' || !RESOURCE_RE.test(resourceName)) {
    throw new AtrModelError(
      codes.MODEL_RESOURCE_NAME,
      `${label}.resourceName must be letters, digits and "_", such as "blog_post"; got ${show(resourceName)}`,
    );
  } else {
    resourceKey = resourceName;
  }
  if (resourceKey === 'atr') {
    throw new AtrModelError(codes.MODEL_RESOURCE_NAME, `${label}.resourceName may not be "atr": event names starting with "atr." are atr's own`);
  }

  let scope = cls.publicationScope;
  if (scope === undefined || scope === null) scope = [];
  if (typeof scope === 'string') scope = [scope];
  if (!Array.isArray(scope) || !scope.every((c) => typeof c === 'string' && c !== '')) {
    throw new AtrModelError(
      codes.MODEL_SCOPE,
      `${label}.publicationScope must be an array of column names, such as ['organization_id']; got ${show(cls.publicationScope)}`,
    );
  }
  const scopeNames = scope.map((column) => scopeKeyOf(resourceKeyOf(column)));
  for (const [i, name] of scopeNames.entries()) {
    if (!/^[A-Za-z0-9_-]+$/.test(name)) {
      throw new AtrModelError(codes.MODEL_SCOPE, `${label}.publicationScope: the column "${scope[i]}" does not give a valid scope name`);
    }
  }

  const actionsOption = cls.publishableActions;
  let actions: Action[];
  if (actionsOption === undefined || actionsOption === null) {
    actions = [...ACTIONS];
  } else if (Array.isArray(actionsOption) && actionsOption.every((a) => (ACTIONS as readonly string[]).includes(a))) {
    actions = ACTIONS.filter((a) => actionsOption.includes(a));
  } else {
    throw new AtrModelError(
      codes.MODEL_ACTIONS,
      `${label}.publishableActions must be an array of 'created', 'updated', 'destroyed'; got ${show(actionsOption)}`,
    );
  }

  const attributes = cls.publishedAttributes;
  if (attributes !== undefined && attributes !== null && (!Array.isArray(attributes) || !attributes.every((a) => typeof a === 'string'))) {
    throw new AtrModelError(
      codes.MODEL_ATTRIBUTES,
      `${label}.publishedAttributes must be an array of attribute names, such as ['id', 'title']; got ${show(attributes)}`,
    );
  }

  const fromReturning = cls.publishFromReturning;
  if (fromReturning !== undefined && fromReturning !== null && typeof fromReturning !== 'boolean') {
    throw new AtrModelError(codes.MODEL_CLASS, `${label}.publishFromReturning must be true or false; got ${show(fromReturning)}`);
  }

  return {
    className: label,
    resourceKey,
    scopeColumns: [...scope],
    scopeNames,
    actions,
    publishedAttributes: attributes ? [...attributes] : undefined,
    fromReturning: fromReturning === true,
  };
}

/** The scope of a row: `organization.7`, '' when unscoped; throws when a scope value is missing. */
export function scopeOfModel(config: ModelConfig, row: Record<string, unknown>): string {
  if (config.scopeColumns.length === 0) return '';
  const pairs: unknown[] = [];
  config.scopeColumns.forEach((column, i) => {
    const value = row[column];
    if (value === null || value === undefined) {
      throw new AtrModelError(
        codes.EVENT_SCOPE_MISSING,
        `${config.className} row has no value for its publicationScope column "${column}"; its event is dropped`,
      );
    }
    pairs.push(config.scopeNames[i], value);
  });
  return scopeKey(...pairs);
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
