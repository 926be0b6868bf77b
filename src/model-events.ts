/**
 * Events of a model row: the record as the model formats it for JSON
 * (`$formatJson` applied, no relations, `publishedAttributes` applied after),
 * the scope, the changed attributes, and the scope-move pair.
 */
import { AtrSerializeError, codes } from './errors';
import type { Action, ModelEvent } from './event';
import type { ModelConfig } from './model-config';
import { scopeOfModel } from './model-config';
import { routingKeyOf } from './routing';

/** The part of an Objection model instance we use. */
export interface ModelLike {
  toJSON(opt?: { shallow?: boolean }): unknown;
  $id(): unknown;
  constructor: { idColumn: string | string[]; getIdPropertyArray?: () => string[]; getRelations?: () => Record<string, unknown> };
  [key: string]: unknown;
}

/**
 * The record of a row as it may leave the app: the model's own `toJSON()`
 * (so `$formatJson` and any `toJSON` override apply), shallow: relations are
 * left out, so a graph with cycles cannot recurse and the payload stays the
 * row itself.
 */
export function recordOf(config: ModelConfig, model: ModelLike): Record<string, unknown> {
  const json = model.toJSON({ shallow: true });
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new AtrSerializeError(codes.SERIALIZE, `${config.className}#toJSON() must return an object; its event is dropped`);
  }
  const relations = model.constructor.getRelations?.() ?? {};
  for (const name of Object.keys(relations)) delete (json as Record<string, unknown>)[name];
  if (!config.publishedAttributes) return json as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const name of config.publishedAttributes) if (name in json) out[name] = (json as Record<string, unknown>)[name];
  return out;
}

/** The id part of a record (what a scope that lost the row is told). */
export function idRecordOf(model: ModelLike): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const prop of idProperties(model)) out[prop] = model[prop];
  return out;
}

function idProperties(model: ModelLike): string[] {
  const cls = model.constructor;
  if (typeof cls.getIdPropertyArray === 'function') return cls.getIdPropertyArray();
  return Array.isArray(cls.idColumn) ? cls.idColumn : [cls.idColumn];
}

/**
 * A key that identifies a row by its id (composite ids too). Values compare
 * as text: a driver may give an id as a number after an insert and as a
 * string when it reads the row (bigint ids).
 */
export function idKeyOf(model: ModelLike): string {
  return JSON.stringify(idProperties(model).map((p) => (model[p] === null || model[p] === undefined ? null : String(model[p]))));
}

/** The attributes whose values differ between two records of one row. */
export function changedAttributes(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const changed: string[] = [];
  for (const key of keys) {
    if (comparable(before[key]) !== comparable(after[key])) changed.push(key);
  }
  return changed;
}

function comparable(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => {
      if (typeof v === 'bigint') return `${v}n`;
      if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return `buffer:${(v as { data: number[] }).data.join(',')}`;
      return v;
    }) ?? 'undefined';
  } catch {
    return String(value);
  }
}

export interface EventInput {
  config: ModelConfig;
  action: Action;
  model: ModelLike;
  record: Record<string, unknown>;
  scope: string;
  changes?: string[];
}

export function modelEvent({ config, action, model, record, scope, changes }: EventInput): ModelEvent {
  const name = `${config.resourceKey}.${action}`;
  const event: ModelEvent = {
    name,
    action,
    scope,
    routingKey: routingKeyOf(scope, name),
    recordType: config.className,
    record,
    occurredAt: new Date().toISOString(),
    model,
  };
  if (changes) event.changes = changes;
  return event;
}

/** The created or destroyed event of a row. */
export function rowEvent(config: ModelConfig, action: 'created' | 'destroyed', model: ModelLike): ModelEvent {
  return modelEvent({ config, action, model, record: recordOf(config, model), scope: scopeOfModel(config, model) });
}

/**
 * The events of an updated row: `updated` in its scope, or, when it moved to
 * another scope, `destroyed` with its id only in the old scope and `updated`
 * with the full record in the new one.
 */
export function updateEvents(config: ModelConfig, before: ModelLike | undefined, after: ModelLike): ModelEvent[] & { error?: unknown } {
  const record = recordOf(config, after);
  const changes = before ? changedAttributes(recordOf(config, before), record) : undefined;
  const events: ModelEvent[] = [];
  let scope: string | undefined;
  let scopeError: unknown;
  try {
    scope = scopeOfModel(config, after);
  } catch (err) {
    scopeError = err;
  }
  if (before && config.scopeColumns.length > 0 && config.actions.includes('destroyed')) {
    let oldScope: string | undefined;
    try {
      oldScope = scopeOfModel(config, before);
    } catch {
      // it had no scope before: no scope to tell it left
    }
    if (oldScope !== undefined && oldScope !== scope) {
      events.push(modelEvent({ config, action: 'destroyed', model: before, record: idRecordOf(before), scope: oldScope }));
    }
  }
  if (scope === undefined) {
    // The old scope (if any) has been told; the missing new scope is an error to report.
    return Object.assign(events, { error: scopeError });
  }
  if (config.actions.includes('updated')) {
    events.push(modelEvent({ config, action: 'updated', model: after, record, scope, changes }));
  }
  return events;
}
