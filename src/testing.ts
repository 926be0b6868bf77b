/**
 * Helpers for an app's own tests (`import { expectEvents } from 'atr/testing'`):
 * run a block of code and assert which events it published, or that it
 * published none (after a rollback, say). They listen to the Atr's
 * `published` and `dropped` events, so they see what reached the broker.
 */
import { AssertionError } from 'node:assert';
import type { Atr } from './atr';
import type { AtrEvent } from './event';
import { waitingForCommit } from './transactions';

/** An event as the broker took it: the event, and the message body it was sent as. */
export interface PublishedEvent {
  name: string;
  scope: string;
  routingKey: string;
  /** The serialized body, parsed (what a socket receives, without the id). */
  message: Record<string, unknown>;
  event: AtrEvent;
}

/** What an expected event must match; every given field is compared. */
export interface ExpectedEvent {
  name: string;
  /** The scope (`organization.7`; '' is the root scope). */
  scope?: string;
  /** Attributes the record (or `data`) must hold; others may be there too. */
  record?: Record<string, unknown>;
  /** Attributes that must be listed in `changes`. */
  changes?: string[];
  /** Attributes the record must NOT hold (hidden fields). */
  without?: string[];
}

export interface CaptureOptions {
  /** Milliseconds to keep listening after the block and the pipeline are done (default 20). */
  settle?: number;
  /** Give up waiting for the pipeline after this many milliseconds (default 5000). */
  timeout?: number;
}

export interface CaptureResult<T> {
  result: T;
  published: PublishedEvent[];
  dropped: Array<{ event: AtrEvent; error: Error }>;
}

/**
 * Runs `block`, waits until its events have left the pipeline, and returns
 * the events handed in from the block's start on (its own, and those its
 * transactions handed in at commit) that were published or dropped; an
 * event an earlier write handed in is left out even if it leaves meanwhile.
 *
 * @example
 * const { published } = await captureEvents(atr, () => Post.query().insert({ title: 'Hi', organization_id: 7 }));
 */
export async function captureEvents<T>(atr: Atr, block: () => T | Promise<T>, options: CaptureOptions = {}): Promise<CaptureResult<T>> {
  const published: PublishedEvent[] = [];
  const dropped: Array<{ event: AtrEvent; error: Error }> = [];
  // Only events handed in from now on: one handed in by an earlier write may
  // still be on its way out (events leave in batches, after the turn).
  const ours = new WeakSet<AtrEvent>();
  const onQueued = (event: AtrEvent) => ours.add(event);
  const onPublished = (event: AtrEvent, text: string) => {
    if (!ours.has(event)) return;
    let message: Record<string, unknown> = {};
    try {
      message = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // a custom broker may hand something else; keep the event
    }
    published.push({ name: event.name, scope: event.scope, routingKey: event.routingKey, message, event });
  };
  const onDropped = (event: AtrEvent, error: Error) => {
    if (ours.has(event)) dropped.push({ event, error });
  };
  atr.on('queued', onQueued);
  atr.on('published', onPublished);
  atr.on('dropped', onDropped);
  try {
    const result = await block();
    await settled(atr, options);
    return { result, published, dropped };
  } finally {
    atr.off('queued', onQueued);
    atr.off('published', onPublished);
    atr.off('dropped', onDropped);
  }
}

/**
 * Asserts that `block` published exactly the `expected` events, in order.
 * Resolves to what was published.
 *
 * @example
 * await expectEvents(atr, () => Post.query().insert({ title: 'Hi', organization_id: 7 }), [
 *   { name: 'post.created', scope: 'organization.7', record: { title: 'Hi' } },
 * ]);
 */
export async function expectEvents(
  atr: Atr,
  block: () => unknown,
  expected: ExpectedEvent[],
  options: CaptureOptions = {},
): Promise<PublishedEvent[]> {
  const { published, dropped } = await captureEvents(atr, block, options);
  const problems: string[] = [];
  if (published.length !== expected.length) {
    problems.push(`expected ${expected.length} event(s), got ${published.length}`);
  }
  expected.forEach((want, i) => {
    const got = published[i];
    if (!got) return;
    const problem = mismatch(want, got);
    if (problem) problems.push(`event ${i + 1}: ${problem}`);
  });
  if (problems.length > 0) {
    throw new AssertionError({
      message: `${problems.join('; ')}\n  published: ${describeAll(published)}${dropped.length ? `\n  dropped: ${dropped.map((d) => `${d.event.routingKey} (${d.error.message})`).join(', ')}` : ''}`,
      actual: published.map(summary),
      expected,
      operator: 'expectEvents',
    });
  }
  return published;
}

/**
 * Asserts that `block` published nothing (and that nothing arrived for
 * `settle` ms after it).
 *
 * @example
 * await expectNoEvents(atr, () => Post.transaction(async (trx) => {
 *   await Post.query(trx).insert({ title: 'Hi', organization_id: 7 });
 *   await trx.rollback();
 * }));
 */
export async function expectNoEvents(atr: Atr, block: () => unknown, options: CaptureOptions = {}): Promise<void> {
  const { published } = await captureEvents(atr, block, { settle: 100, ...options });
  if (published.length > 0) {
    throw new AssertionError({
      message: `expected no events, got ${published.length}: ${describeAll(published)}`,
      actual: published.map(summary),
      expected: [],
      operator: 'expectNoEvents',
    });
  }
}

/**
 * Resolves once the Atr's pipeline is empty and no event of it waits for a
 * commit, then `settle` ms more.
 *
 * @example
 * await Post.query().insert({ title: 'Hi', organization_id: 7 });
 * await settled(atr); // the event has reached the broker (or was dropped and reported)
 */
export async function settled(atr: Atr, options: CaptureOptions = {}): Promise<void> {
  const deadline = Date.now() + (options.timeout ?? 5000);
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  let quiet = 0;
  while (quiet < 2 && Date.now() < deadline) {
    await turn();
    quiet = atr.pending === 0 && waitingForCommit(atr) === 0 ? quiet + 1 : 0;
  }
  const settle = options.settle ?? 20;
  if (settle > 0) await new Promise((resolve) => setTimeout(resolve, settle));
  while (atr.pending > 0 && Date.now() < deadline) await turn();
}

function mismatch(want: ExpectedEvent, got: PublishedEvent): string | undefined {
  if (got.name !== want.name) return `name ${JSON.stringify(got.name)} is not ${JSON.stringify(want.name)}`;
  if (want.scope !== undefined && got.scope !== want.scope) return `${want.name} went to scope ${JSON.stringify(got.scope)}, not ${JSON.stringify(want.scope)}`;
  const record = (got.message.record ?? got.message.data ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(want.record ?? {})) {
    if (JSON.stringify(record[key]) !== JSON.stringify(value)) {
      return `${want.name}: record.${key} is ${JSON.stringify(record[key])}, not ${JSON.stringify(value)}`;
    }
  }
  for (const key of want.without ?? []) {
    if (key in record) return `${want.name}: record holds ${key}`;
  }
  const changes = Array.isArray(got.message.changes) ? (got.message.changes as string[]) : [];
  for (const key of want.changes ?? []) {
    if (!changes.includes(key)) return `${want.name}: changes ${JSON.stringify(changes)} lack ${key}`;
  }
  return undefined;
}

function summary(p: PublishedEvent): Record<string, unknown> {
  return { name: p.name, scope: p.scope, record: p.message.record ?? p.message.data, changes: p.message.changes };
}

function describeAll(published: PublishedEvent[]): string {
  return published.length === 0 ? '(none)' : published.map((p) => p.routingKey).join(', ');
}
