/**
 * The id of the last event seen per scope. This is the one place that state
 * lives: resume (`{"type":"resume","positions":{scope:id}}`, or a `since`
 * query parameter) reads it from here.
 */
export interface EventLike {
  id?: unknown;
  name?: unknown;
  routingKey?: unknown;
}

/**
 * The scope of an event: its routing key minus the event name.
 *
 * @example
 * scopeOfEvent({ name: 'post.created', routingKey: 'organization.7.post.created' });   // 'organization.7'
 * scopeOfEvent({ name: 'post.created', routingKey: 'post.created' });                  // '' (the root scope)
 */
export function scopeOfEvent(event: EventLike): string | undefined {
  const { name, routingKey } = event;
  if (typeof name !== 'string' || typeof routingKey !== 'string') return undefined;
  if (routingKey === name) return '';
  const suffix = `.${name}`;
  if (!routingKey.endsWith(suffix)) return undefined;
  return routingKey.slice(0, -suffix.length);
}

/**
 * Last event id per scope; the client keeps one as `client.positions`.
 *
 * @example
 * client.positions.toJSON();   // { 'organization.7': '1764780000000-000042' }
 */
export class Positions {
  private readonly last = new Map<string, string>();

  /** Notes an event's id under its scope; events without an id or routing key are ignored. */
  record(event: EventLike): void {
    if (typeof event.id !== 'string' || event.id === '') return;
    const scope = scopeOfEvent(event);
    if (scope === undefined) return;
    this.last.set(scope, event.id);
  }

  /** The last id seen in a scope. */
  get(scope: string): string | undefined {
    return this.last.get(scope);
  }

  /** Sets a position (say, one the page got from the server with the initial data). */
  set(scope: string, id: string): void {
    this.last.set(scope, id);
  }

  /** `{ "organization.7": "1764780000000-000042" }`: what a resume message carries. */
  toJSON(): Record<string, string> {
    return Object.fromEntries(this.last);
  }

  get size(): number {
    return this.last.size;
  }
}
