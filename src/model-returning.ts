/**
 * Inserted rows without a read-back, for a model that sets
 * `static publishFromReturning = true`: where the database has `INSERT …
 * RETURNING` (PostgreSQL, CockroachDB, SQLite ≥ 3.35 through better-sqlite3),
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
 * Where it does not apply (MySQL and MariaDB, a query with its own
 * `returning`, knex's postProcessResponse, composite ids on SQLite) the
 * after-insert hook reads the rows back.
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
  driver?: unknown;
  config?: { client?: unknown; postProcessResponse?: unknown };
}

interface ModelClassLike {
  idColumn?: unknown;
}

/** The rows the database returned for one insert query. */
const returnedRows = new WeakMap<object, Record<string, unknown>[]>();
const sqliteReturning = new WeakMap<object, boolean>();

/** SQLite has RETURNING from 3.35; better-sqlite3 bundles its own, so ask it once per driver. */
function betterSqliteHasReturning(driver: unknown): boolean {
  if (typeof driver !== 'function') return false;
  const known = sqliteReturning.get(driver);
  if (known !== undefined) return known;
  let ok = false;
  try {
    const db = new (driver as new (file: string) => { prepare(sql: string): { pluck(): { get(): unknown } }; close(): void })(':memory:');
    try {
      const [major = 0, minor = 0] = String(db.prepare('select sqlite_version()').pluck().get()).split('.').map(Number);
      ok = major > 3 || (major === 3 && minor >= 35);
    } finally {
      db.close();
    }
  } catch {
    ok = false;
  }
  sqliteReturning.set(driver, ok);
  return ok;
}

type Flavour = 'objects' | 'scalar';

/**
 * How Objection reads an insert's result without a `returning` of its own:
 * PostgreSQL returns `[{ id }]` (Objection adds `returning(idColumn)`),
 * SQLite returns `[lastID]`. undefined: no RETURNING path here.
 */
function flavourOf(client: KnexClientLike | undefined, idColumn: unknown): Flavour | undefined {
  if (!client || client.config?.postProcessResponse) return undefined;
  const dialect = String(client.dialect ?? '');
  if (dialect === 'postgresql' || dialect === 'cockroachdb') {
    return typeof idColumn === 'string' || (Array.isArray(idColumn) && idColumn.every((c) => typeof c === 'string')) ? 'objects' : undefined;
  }
  if (dialect === 'sqlite3' && client.config?.client === 'better-sqlite3' && typeof idColumn === 'string') {
    return betterSqliteHasReturning(client.driver) ? 'scalar' : undefined;
  }
  return undefined;
}

interface ReturnRowsOptions {
  key: object;
  idColumn: string | string[];
  flavour: Flavour;
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
    const { key, idColumn, flavour } = this.opt as ReturnRowsOptions;
    const rows = result as Record<string, unknown>[];
    returnedRows.set(key, rows);
    if (flavour === 'scalar') return rows.map((row) => row[idColumn as string]);
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
  const flavour = flavourOf(query.knex()?.client, idColumn);
  if (!flavour) return;
  const opt: ReturnRowsOptions = { key: builder, idColumn: idColumn as string | string[], flavour };
  query.addOperation(new ReturnRowsOperation('atrReturnRows', opt), []);
}

/** The whole rows an insert returned (and forgets them), or undefined when it returned none. */
export function takeReturnedRows(builder: object): Record<string, unknown>[] | undefined {
  const rows = returnedRows.get(builder);
  returnedRows.delete(builder);
  return rows;
}
