/**
 * What the Publishable static query hooks do. Objection calls the static
 * hooks for instance writes (`post.$query().patch()`) and query writes
 * (`Post.query().patch().where()`) alike, and for the queries that
 * `insertGraph`/`upsertGraph` run, so one mechanism covers every write and
 * nothing is announced twice.
 *
 * Every event carries the full row as the database holds it: inserted rows are
 * read back, updated rows are read before (their old scope, the set of rows
 * the `where` matches) and after (the new values), deleted rows are read
 * before. The reads run on the write's own connection, inside its
 * transaction, so they see exactly what the write did on every dialect (MySQL
 * and MariaDB have no RETURNING).
 *
 * Nothing here fails the write: errors are reported through the Atr (see
 * `guard` for the one database error that is passed on).
 */
import type { Atr } from './atr';
import type { ModelEvent } from './event';
import { AtrError, codes } from './errors';
import { atrOf, modelConfig } from './model-config';
import type { ModelConfig } from './model-config';
import type { ModelLike } from './model-events';
import { idKeyOf, rowEvent, updateEvents } from './model-events';
import { requestReturnedRows, takeReturnedRows } from './model-returning';
import { readByIdsDirectly, readsDirectly } from './sqlite-read';
import { afterCommit, isTransaction } from './transactions';

/** The part of Objection's StaticHookArguments we read. */
export interface HookArgs {
  asFindQuery(): PromiseLike<unknown[]> & { forUpdate(): PromiseLike<unknown[]> };
  result: unknown[];
  transaction: unknown;
  inputItems: unknown[];
  items: unknown[];
}

/** The part of a model class we call. */
export interface ModelClassLike {
  name: string;
  query(trx?: unknown): { findByIds(ids: unknown[]): PromiseLike<unknown[]> };
}

/** Rows read by a before-hook, for the after-hook of the same query; 'failed' when that read failed (reported). */
const readBefore = new WeakMap<object, ModelLike[] | 'failed'>();
const warnedUnconfigured = new WeakSet<object>();

/**
 * The query builder behind the hook arguments: the key that ties a
 * before-hook to its after-hook. Objection keeps it under a private symbol;
 * the user context cannot serve, as graph operations share it between
 * queries that run at the same time.
 */
let builderKey: symbol | undefined;
function builderOf(args: HookArgs): object {
  const known = builderKey && (args as unknown as Record<symbol, unknown>)[builderKey];
  if (known && typeof known === 'object') return known;
  for (const sym of Object.getOwnPropertySymbols(args)) {
    const value = (args as unknown as Record<symbol, unknown>)[sym];
    if (value && typeof value === 'object') {
      builderKey = sym;
      return value;
    }
  }
  throw new AtrError(codes.MODEL_HOOKS, 'atr cannot find the query builder in Objection\'s hook arguments (an unsupported Objection version?)');
}

function atrFor(cls: ModelClassLike): Atr | undefined {
  const atr = atrOf(cls as never);
  if (!atr && !warnedUnconfigured.has(cls)) {
    warnedUnconfigured.add(cls);
    process.emitWarning(
      `${cls.name} is Publishable but atr is not configured (call configure() or set static atr): its events are dropped`,
      { code: codes.NOT_CONFIGURED },
    );
  }
  return atr;
}

/** A query of ours failed in the database (not a bug in building an event). */
class ReadFailure extends Error {
  constructor(readonly error: unknown) {
    super('atr could not read the rows of a write');
  }
}

function read<T>(query: PromiseLike<T>): Promise<T> {
  return Promise.resolve(query).then(undefined, (err: unknown) => {
    throw new ReadFailure(err);
  });
}

/**
 * Runs a hook's work; a failure is reported, never thrown into the write,
 * with one exception: a read of ours that the database refused inside a
 * transaction (a deadlock, an aborted PostgreSQL transaction, a lost
 * connection) is thrown as it came, because that transaction is broken and
 * the app's own next statement would have met the same error; swallowing it
 * would let the app commit a transaction the database already rolled back.
 */
function guard(cls: ModelClassLike, args: HookArgs, where: string, work: (atr: Atr, config: ModelConfig) => Promise<void> | undefined): Promise<void> {
  let config: ModelConfig | undefined;
  let atr: Atr | undefined;
  const failed = (err: unknown): void => {
    if (err instanceof ReadFailure && isTransaction(args.transaction)) throw err.error;
    if (!atr) throw err; // the configuration itself is wrong: as before, the write says so
    atr.reportError(err instanceof ReadFailure ? err.error : err, { where, model: config!.className });
  };
  try {
    config = modelConfig(cls as never);
    atr = atrFor(cls);
    if (!atr) return Promise.resolve();
    const running = work(atr, config);
    return running ? running.then(undefined, failed) : Promise.resolve();
  } catch (err) {
    return Promise.resolve().then(() => failed(err));
  }
}

/** Hands events to the Atr once the write's outermost transaction commits (at once outside one). */
function publishAfterCommit(atr: Atr, trx: unknown, events: ModelEvent[]): void {
  if (events.length === 0) return;
  afterCommit(
    trx,
    () => {
      for (const event of events) {
        // The pipeline reports a failure; the write has long returned.
        atr.enqueueEvent(event);
      }
    },
    (err) => atr.reportError(err, { where: 'after commit' }),
    atr,
  );
}

/** Builds one event per row; a row whose event cannot be built is reported and skipped. */
function eventsOf<T>(atr: Atr, config: ModelConfig, rows: T[], build: (row: T) => ModelEvent[] & { error?: unknown }): ModelEvent[] {
  const events: ModelEvent[] = [];
  for (const row of rows) {
    try {
      const built = build(row);
      events.push(...built);
      if (built.error) atr.reportError(built.error, { where: 'build event', model: config.className });
    } catch (err) {
      atr.reportError(err, { where: 'build event', model: config.className });
    }
  }
  return events;
}

/** Reads rows by id in the write's transaction, keyed by id. */
function readByIds(cls: ModelClassLike, trx: unknown, rows: ModelLike[]): Promise<Map<string, ModelLike>> {
  const ids = rows.map((row) => row.$id()).filter((id) => id !== undefined && id !== null);
  if (ids.length === 0) return Promise.resolve(new Map());
  const lean = cls as unknown as LeanModelClass;
  if (typeof lean.idColumn === 'string' && typeof lean.tableName === 'string' && typeof lean.fromDatabaseJson === 'function') {
    // A plain knex read: an Objection query costs more than the insert it follows
    // (its builder, operations and hooks); fromDatabaseJson still runs the
    // model's column mappers and $parseDatabaseJson.
    const knex = (trx ?? lean.knex()) as (table: string) => { whereIn(column: string, values: unknown[]): PromiseLike<Record<string, unknown>[]> };
    const raw = readsDirectly(knex, ids) ? readByIdsDirectly(knex, lean.tableName, lean.idColumn, ids) : knex(lean.tableName).whereIn(lean.idColumn, ids);
    return read(raw).then((data) => rowsById(cls, data));
  }
  return read(cls.query(trx ?? undefined).findByIds(ids)).then((fresh) => {
    const found = new Map<string, ModelLike>();
    for (const row of fresh as ModelLike[]) found.set(idKeyOf(row), row);
    return found;
  });
}

/** Rows the database returned, as models, keyed by id. */
function rowsById(cls: ModelClassLike, raw: Record<string, unknown>[]): Map<string, ModelLike> {
  const found = new Map<string, ModelLike>();
  for (const data of raw) {
    const row = (cls as unknown as LeanModelClass).fromDatabaseJson(data);
    found.set(idKeyOf(row), row);
  }
  return found;
}

/** What a lean read-back needs of an Objection model class. */
interface LeanModelClass {
  tableName?: unknown;
  idColumn?: unknown;
  knex(): unknown;
  fromDatabaseJson(json: Record<string, unknown>): ModelLike;
}

/**
 * The rows a query-level update or delete is about to write. Inside a
 * transaction (not SQLite, which has one writer anyway) they are locked, so
 * that nobody changes them between this read and the write.
 */
async function readMatching(args: HookArgs): Promise<void> {
  const builder = builderOf(args);
  readBefore.set(builder, 'failed');
  const query = args.asFindQuery();
  const trx = args.transaction as { client?: { dialect?: string } } | undefined;
  const lock = isTransaction(trx) && !/sqlite/i.test(String(trx?.client?.dialect ?? ''));
  readBefore.set(builder, (await read(lock ? query.forUpdate() : query)) as ModelLike[]);
}

/**
 * A write that touched more rows than were read before it raced with another
 * write (outside a transaction); say so rather than announce part of it.
 */
function checkCount(atr: Atr, config: ModelConfig, args: HookArgs, announced: number, what: string): void {
  const [count] = args.result;
  if (args.result.length === 1 && typeof count === 'number' && count > announced) {
    atr.reportError(
      new AtrError(
        codes.MODEL_HOOKS,
        `${config.className}: ${count} rows were ${what} but ${announced} announced (a concurrent write matched meanwhile); run bulk writes in a transaction`,
      ),
      { where: `after ${what}`, model: config.className },
    );
  }
}

/** For a model that chose it, asks the insert to return whole rows (see model-returning.ts). */
export function onBeforeInsert(cls: ModelClassLike, args: HookArgs): void {
  try {
    const config = modelConfig(cls as never);
    if (!config.fromReturning || !config.actions.includes('created')) return;
    requestReturnedRows(builderOf(args), cls as never);
  } catch (err) {
    // Not fatal: the after-insert hook reads the rows back instead.
    atrFor(cls)?.reportError(err, { where: 'before insert', model: cls.name });
  }
}

export function onAfterInsert(cls: ModelClassLike, args: HookArgs): Promise<void> {
  return guard(cls, args, 'after insert', (atr, config) => {
    const returned = takeReturnedRows(builderOf(args));
    if (!config.actions.includes('created')) return undefined;
    const inserted = args.inputItems as ModelLike[];
    if (inserted.length === 0) return undefined;
    const publish = (rows: ModelLike[]) =>
      publishAfterCommit(atr, args.transaction, eventsOf(atr, config, rows, (row) => [rowEvent(config, 'created', row)]));
    // The rows as stored: the database fills defaults, generated columns and
    // types. What RETURNING gave is exactly what was inserted (an insert that
    // onConflict().ignore() skipped returns nothing, and is not announced).
    if (returned) {
      publish(returned.map((data) => (cls as unknown as LeanModelClass).fromDatabaseJson(data)));
      return undefined;
    }
    return readByIds(cls, args.transaction, inserted).then((fresh) => publish(inserted.map((model) => fresh.get(idKeyOf(model)) ?? model)));
  });
}

export function onBeforeUpdate(cls: ModelClassLike, args: HookArgs): Promise<void> {
  return guard(cls, args, 'before update', async (_atr, config) => {
    if (!config.actions.includes('updated') && !config.actions.includes('destroyed')) return;
    await readMatching(args);
  });
}

export function onAfterUpdate(cls: ModelClassLike, args: HookArgs): Promise<void> {
  return guard(cls, args, 'after update', async (atr, config) => {
    if (!config.actions.includes('updated') && !config.actions.includes('destroyed')) return;
    const builder = builderOf(args);
    const before = readBefore.get(builder);
    readBefore.delete(builder);
    if (before === 'failed') return; // reported by the before-hook
    let pairs: Array<[ModelLike | undefined, ModelLike]>;
    if (before) {
      checkCount(atr, config, args, before.length, 'updated');
      const fresh = await readByIds(cls, args.transaction, before);
      pairs = [];
      const lost: string[] = [];
      for (const old of before) {
        const now = fresh.get(idKeyOf(old));
        if (now) pairs.push([old, now]);
        else lost.push(JSON.stringify(old.$id()));
      }
      if (lost.length > 0) {
        atr.reportError(
          new AtrError(
            codes.MODEL_HOOKS,
            `${config.className}: ${lost.length} updated row(s) could not be found by id after the update (an update of the id itself?); no event for ${lost.join(', ')}`,
          ),
          { where: 'after update', model: config.className },
        );
      }
    } else {
      // The before-hook did not run (a subclass hook that skips super): the
      // rows the where-clause matches now, without changes or scope moves.
      atr.reportError(
        new AtrError(codes.MODEL_HOOKS, `${config.className}.beforeUpdate did not call super: its update events lack changes and scope moves`),
        { where: 'after update', model: config.className },
      );
      pairs = ((await read(args.asFindQuery())) as ModelLike[]).map((row) => [undefined, row]);
    }
    publishAfterCommit(atr, args.transaction, eventsOf(atr, config, pairs, ([old, now]) => updateEvents(config, old, now)));
  });
}

export function onBeforeDelete(cls: ModelClassLike, args: HookArgs): Promise<void> {
  return guard(cls, args, 'before delete', async (_atr, config) => {
    if (!config.actions.includes('destroyed')) return;
    await readMatching(args);
  });
}

export function onAfterDelete(cls: ModelClassLike, args: HookArgs): Promise<void> {
  return guard(cls, args, 'after delete', async (atr, config) => {
    if (!config.actions.includes('destroyed')) return;
    const builder = builderOf(args);
    const before = readBefore.get(builder);
    readBefore.delete(builder);
    if (before === 'failed') return; // reported by the before-hook
    if (!before) {
      atr.reportError(
        new AtrError(codes.MODEL_HOOKS, `${config.className}.beforeDelete did not call super: the deleted rows are unknown and no destroyed event is published`),
        { where: 'after delete', model: config.className },
      );
      return;
    }
    checkCount(atr, config, args, before.length, 'deleted');
    publishAfterCommit(atr, args.transaction, eventsOf(atr, config, before, (row) => [rowEvent(config, 'destroyed', row)]));
  });
}
