/**
 * Events and their ids.
 *
 * The broker assigns the id when it publishes, because the id is the event's
 * position in the scope's history (`<ms>-<seq>`, the seq zero-padded to six
 * digits), so ids of one scope sort, as strings, in publish order and a client
 * can resume from one. The app serializes the event once, without the id; the
 * broker puts the id in front: `{"id":"…",` + body.slice(1).
 */
import { AtrSerializeError, codes } from './errors';

export type Action = 'created' | 'updated' | 'destroyed';
export const ACTIONS: readonly Action[] = ['created', 'updated', 'destroyed'];

/** What every event carries, before the broker gives it an id. */
export interface AtrEvent {
  /** Set by the broker on publish. */
  id?: string;
  /** `post.updated`, `invoice.paid`. */
  name: string;
  /** The scope: `organization.7`, or '' for the root. Not sent on the wire (the routing key holds it). */
  scope: string;
  routingKey: string;
  occurredAt: string;
}

/** An event of a Publishable model. */
export interface ModelEvent extends AtrEvent {
  action: Action;
  recordType: string;
  /** The full row as the model formats it for JSON (`$formatJson` applied); `{ id }` only for a scope it left. */
  record: Record<string, unknown>;
  changes?: string[];
  /** The model instance the event is about (never serialized by the default serializer). */
  model?: unknown;
}

/** An event from `publish()`. */
export interface DataEvent extends AtrEvent {
  data: unknown;
}

/** A serializer class: `new (event) → { toJSON() }`. Its output may be async. */
export interface EventSerializerClass {
  new (event: ModelEvent | DataEvent): { toJSON(): unknown };
}

/** The default: the wire envelope of DESIGN.md. */
export class DefaultEventSerializer {
  constructor(readonly event: ModelEvent | DataEvent) {}
  toJSON(): Record<string, unknown> {
    if ('record' in this.event) {
      const e = this.event;
      const out: Record<string, unknown> = {
        name: e.name,
        action: e.action,
        routingKey: e.routingKey,
        recordType: e.recordType,
        record: e.record,
      };
      if (e.changes) out.changes = e.changes;
      out.occurredAt = e.occurredAt;
      return out;
    }
    const e = this.event;
    return { name: e.name, routingKey: e.routingKey, data: e.data, occurredAt: e.occurredAt };
  }
}

/**
 * JSON text of a value, for the wire: bigint as a decimal string, Buffer as
 * base64, Date as ISO text (its own toJSON), a cycle as a clear error rather
 * than a stack overflow.
 */
export function stringifyEventBody(value: unknown): string {
  let text: string | undefined;
  try {
    // The replacer costs a call per key; a value without bigints, bytes or
    // objects of their own making (the usual row) needs none.
    text = plainJson(value, 0) ? JSON.stringify(value) : JSON.stringify(value, replaceForWire);
  } catch (err) {
    // JSON.stringify itself finds a cycle among plain objects (a TypeError);
    // a toJSON() that recurses for ever ends in a RangeError: neither escapes.
    const circular = err instanceof TypeError && /circular/i.test(err.message);
    throw new AtrSerializeError(
      codes.SERIALIZE,
      circular ? 'The event holds a circular structure' : `The event could not be turned into JSON: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (text === undefined || text[0] !== '{') {
    throw new AtrSerializeError(codes.SERIALIZE, 'The event serializer must produce a JSON object');
  }
  return text;
}

/**
 * true when JSON.stringify gives the wire's text without the replacer:
 * strings, numbers, booleans, null, Dates, and plain objects and arrays of
 * them, a few levels deep (deeper, or anything else, takes the replacer).
 */
function plainJson(value: unknown, depth: number): boolean {
  if (value === null || typeof value !== 'object') return typeof value !== 'bigint';
  if (depth > 3 || ArrayBuffer.isView(value)) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!plainJson(item, depth + 1)) return false;
    return true;
  }
  if (value instanceof Date) return true;
  const proto = Object.getPrototypeOf(value);
  if ((proto !== Object.prototype && proto !== null) || typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  for (const key in value) if (!plainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
  return true;
}

/**
 * bigint as a decimal string; Buffer and Uint8Array as base64 (`this[key]`
 * is the value before its own toJSON turned it into an array of bytes).
 */
function replaceForWire(this: Record<string, unknown>, key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'object' && v !== null) {
    const raw = this[key];
    if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
  }
  return v;
}

/** The message the broker delivers: the id first, then the serialized body. */
export function composeMessage(id: string, body: string): string {
  return body === '{}' ? `{"id":"${id}"}` : `{"id":"${id}",${body.slice(1)}`;
}

/** Formats a history position as an event id: `1764780000000-000042`. */
export function formatEventId(ms: number | string, seq: number | string): string {
  return `${ms}-${String(seq).padStart(6, '0')}`;
}

/** Parses an event id into [ms, seq], or undefined when it is not one. */
export function parseEventId(id: unknown): [number, number] | undefined {
  if (typeof id !== 'string') return undefined;
  const m = /^(\d{1,16})-(\d{1,16})$/.exec(id);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2])];
}

/** Orders two event ids of one scope: negative when `a` came first. */
export function compareEventIds(a: string, b: string): number {
  const pa = parseEventId(a);
  const pb = parseEventId(b);
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  return pa[0] - pb[0] || pa[1] - pb[1];
}
