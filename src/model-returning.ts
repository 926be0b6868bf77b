/**
 * Inserted rows without a read-back: where the database has `INSERT …
 * RETURNING` (PostgreSQL, CockroachDB, SQLite ≥ 3.35 through better-sqlite3),
 * Publishable's before-insert hook asks the insert itself for the whole rows,
 * keeps them for its after-insert hook and hands Objection only what it would
 * have had without us (the ids), so the app's result is unchanged. That saves
 * one SELECT per insert, the largest part of what Publishable added to an
 * insert (issue 6's insert benchmark).
 *
 * Where it does not apply (MySQL and MariaDB, a query with its own
 * `returning`, knex's postProcessResponse, composite ids on SQLite, a table
 * with triggers, a PostgreSQL role that cannot read the whole table) the
 * after-insert hook reads the rows back as before.
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
  tableName?: unknown;
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
 * Called from the static before-insert hook: makes the insert return whole
 * rows when the database can, the query did not ask for its own, and the
 * table lets RETURNING stand for the stored row (see returningFits).
 */
export async function requestReturnedRows(builder: object, modelClass: ModelClassLike): Promise<void> {
  const query = builder as BuilderLike;
  if (typeof query.knex !== 'function' || typeof query.addOperation !== 'function' || query.has(/returning/)) return;
  const idColumn = modelClass.idColumn;
  const knex = query.knex();
  const flavour = flavourOf(knex?.client, idColumn);
  if (!flavour || typeof modelClass.tableName !== 'string') return;
  if (!(await returningFits(knex as RawKnex, modelClass.tableName))) return;
  const opt: ReturnRowsOptions = { key: builder, idColumn: idColumn as string | string[], flavour };
  query.addOperation(new ReturnRowsOperation('atrReturnRows', opt), []);
}

interface RawKnex {
  client: KnexClientLike;
  raw(sql: string, bindings: unknown[]): PromiseLike<unknown>;
}

/** Per knex configuration (shared by its transactions) and table: the answer of returningFits. */
const fits = new WeakMap<object, Map<string, Promise<boolean>>>();

/**
 * RETURNING gives the row as the insert left it: without what an AFTER
 * trigger changes afterwards (SQLite fills derived columns that way, its
 * BEFORE triggers cannot change the row), and on PostgreSQL only if the role
 * may read every column (RETURNING * would fail the app's insert, where a
 * read-back's failure is only reported). So a table with triggers, or one
 * the role cannot wholly read, keeps the read-back. Asked once per table, on
 * the write's own connection (inside its transaction: the query cannot fail,
 * a missing table answers no); a failed check answers no.
 */
function returningFits(knex: RawKnex, table: string): Promise<boolean> {
  const key = (knex.client.config ?? knex.client) as object;
  let tables = fits.get(key);
  if (!tables) fits.set(key, (tables = new Map()));
  let answer = tables.get(table);
  if (!answer) {
    answer = askReturningFits(knex, table).catch(() => false);
    tables.set(table, answer);
  }
  return answer;
}

async function askReturningFits(knex: RawKnex, table: string): Promise<boolean> {
  if (knex.client.dialect === 'sqlite3') {
    const name = table.slice(table.lastIndexOf('.') + 1);
    const rows = (await knex.raw("select 1 from sqlite_master where type = 'trigger' and lower(tbl_name) = lower(?) limit 1", [name])) as unknown[];
    return Array.isArray(rows) && rows.length === 0;
  }
  // Quoted as knex quotes it, so that to_regclass finds the same table.
  const regclass = table.split('.').map((part) => `"${part.replace(/"/g, '""')}"`).join('.');
  const result = (await knex.raw(
    `select coalesce(not exists (select 1 from pg_trigger where tgrelid = t.oid and not tgisinternal) and has_table_privilege(t.oid, 'SELECT'), false) as fits
       from (select to_regclass(?) as oid) t`,
    [regclass],
  )) as { rows?: Array<{ fits?: unknown }> };
  return result.rows?.[0]?.fits === true;
}

/** The whole rows an insert returned (and forgets them), or undefined when it returned none. */
export function takeReturnedRows(builder: object): Record<string, unknown>[] | undefined {
  const rows = returnedRows.get(builder);
  returnedRows.delete(builder);
  return rows;
}
