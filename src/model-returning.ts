/**
 * Inserted rows without a read-back, for a model that sets
 * `static publishFromReturning = true`: on PostgreSQL (and CockroachDB),
 * Publishable's before-insert hook asks the insert itself for the whole rows,
 * keeps them for its after-insert hook and hands Objection only what it would
 * have had without us (the ids), so the app's result is unchanged. That saves
 * one query per insert.
 *
 * It is the model's choice, not the default, because atr cannot tell for
 * every insert that RETURNING gives the stored row and may be read: an AFTER
 * trigger or a rule that changes the row, a trigger on one partition, a
 * schema chosen per query or per transaction, a role set per transaction
 * whose grants do not cover every column (RETURNING * then fails the insert
 * itself). A check cached per table was tried and broken by each of those.
 *
 * Where it does not apply (MySQL and MariaDB, SQLite, a query with its own
 * `returning`, knex's postProcessResponse) the after-insert hook reads the
 * rows back.
 */
import * as objection from 'objection';

/** What of an Objection query builder we use. */
interface BuilderLike {
  knex(): { client?: KnexClientLike };
  has(selector: RegExp): boolean;
  addOperation(op: unknown, args: unknown[]): unknown;
}

interface KnexClientLike {
  dialect?: string;
  config?: { client?: unknown; postProcessResponse?: unknown };
}

interface ModelClassLike {
  idColumn?: unknown;
}

/** The rows the database returned for one insert query. */
const returnedRows = new WeakMap<object, Record<string, unknown>[]>();

/**
 * Whether the insert can return whole rows in place of what Objection reads
 * from it: on PostgreSQL Objection adds `returning(idColumn)` and reads
 * `[{ id }]`, which we give back. Not SQLite: there a read-back through a
 * statement prepared once (sqlite-read.ts) costs less than the insert's own
 * RETURNING *, which knex prepares anew each time.
 */
function returnsRows(client: KnexClientLike | undefined, idColumn: unknown): boolean {
  if (!client || client.config?.postProcessResponse) return false;
  const dialect = String(client.dialect ?? '');
  if (dialect !== 'postgresql' && dialect !== 'cockroachdb') return false;
  return typeof idColumn === 'string' || (Array.isArray(idColumn) && idColumn.every((c) => typeof c === 'string'));
}

interface ReturnRowsOptions {
  key: object;
  idColumn: string | string[];
}

/** Objection's operation base class: exported at runtime, absent from its typings. */
interface OperationBase {
  opt: unknown;
}
const QueryBuilderOperation = (objection as unknown as { QueryBuilderOperation: new (name: string, opt: object) => OperationBase }).QueryBuilderOperation;

/**
 * Asks the insert for whole rows and gives Objection back only the ids.
 * Options travel in `opt`: Objection clones an operation as
 * `new this.constructor(name, opt)`.
 */
class ReturnRowsOperation extends QueryBuilderOperation {
  onBuildKnex(knexBuilder: { returning(columns: string): unknown }): unknown {
    return knexBuilder.returning('*');
  }

  onRawResult(_builder: unknown, result: unknown): unknown {
    if (!Array.isArray(result) || !result.every((row) => row !== null && typeof row === 'object')) return result;
    const { key, idColumn } = this.opt as ReturnRowsOptions;
    const rows = result as Record<string, unknown>[];
    returnedRows.set(key, rows);
    const columns = Array.isArray(idColumn) ? idColumn : [idColumn];
    return rows.map((row) => {
      const out: Record<string, unknown> = {};
      for (const column of columns) out[column] = row[column];
      return out;
    });
  }
}

/**
 * Called from the static before-insert hook of a model that set
 * `publishFromReturning`: makes the insert return whole rows when the
 * database can and the query did not ask for its own.
 */
export function requestReturnedRows(builder: object, modelClass: ModelClassLike): void {
  const query = builder as BuilderLike;
  if (typeof query.knex !== 'function' || typeof query.addOperation !== 'function' || query.has(/returning/)) return;
  const idColumn = modelClass.idColumn;
  if (!returnsRows(query.knex()?.client, idColumn)) return;
  const opt: ReturnRowsOptions = { key: builder, idColumn: idColumn as string | string[] };
  query.addOperation(new ReturnRowsOperation('atrReturnRows', opt), []);
}

/** The whole rows an insert returned (and forgets them), or undefined when it returned none. */
export function takeReturnedRows(builder: object): Record<string, unknown>[] | undefined {
  const rows = returnedRows.get(builder);
  returnedRows.delete(builder);
  return rows;
}
