/**
 * Rows by id on better-sqlite3, read with a statement prepared once per
 * connection. knex prepares every statement anew, and on SQLite, which runs
 * in the app's own thread, that preparing is most of what a read-back costs
 * (a cached statement reads a row in about 1.5 µs, a prepared-anew SELECT or
 * the insert's own RETURNING * about 8 µs more, and knex's builder more
 * again). The read runs on the write's connection (the transaction's, when
 * there is one), so it sees what the write did, as any read-back does.
 *
 * The SQL is knex's own (`toSQL()`, once per table, id column and count), so
 * identifier quoting and `wrapIdentifier` apply; a knex with
 * `postProcessResponse` is left to the knex path. The read is announced as
 * knex announces its queries (the `query` event), so query logs see it.
 */

interface Statement {
  all(...params: unknown[]): Record<string, unknown>[];
}

interface Connection {
  prepare(sql: string): Statement;
  __knexUid?: string;
  __knexTxId?: string;
}

interface SqliteClient {
  driverName?: string;
  config?: { postProcessResponse?: unknown };
  acquireConnection(): Promise<Connection>;
  releaseConnection(connection: Connection): Promise<unknown>;
  emit?(event: string, data: unknown): unknown;
  /** knex's own conversion of bindings for better-sqlite3 (Date, boolean). */
  _formatBindings(bindings: unknown[]): unknown[];
}

type KnexLike = ((table: string) => { whereIn(column: string, values: unknown[]): { toSQL(): { toNative(): { sql: string } } } }) & {
  client?: SqliteClient;
};

/** Most ids one cached statement takes; more go through knex. */
const MAX_IDS = 16;
/** Most statements kept per connection (tables × id counts). */
const MAX_STATEMENTS = 256;

/** SQL text per knex config (shared by a knex and its transactions), table, id column and id count. */
const sqlCache = new WeakMap<object, Map<string, string>>();
const statementCache = new WeakMap<Connection, Map<string, Statement>>();

/** true when `knex` (a knex instance or transaction) reads through a cached statement. */
export function readsDirectly(knex: unknown, ids: unknown[]): boolean {
  const client = (knex as KnexLike | undefined)?.client;
  return (
    typeof knex === 'function' &&
    client?.driverName === 'better-sqlite3' &&
    !client.config?.postProcessResponse &&
    typeof client.acquireConnection === 'function' &&
    typeof client._formatBindings === 'function' &&
    ids.length > 0 &&
    ids.length <= MAX_IDS
  );
}

/** Reads the rows of `table` whose `idColumn` is one of `ids` (call readsDirectly first). */
export async function readByIdsDirectly(knex: unknown, table: string, idColumn: string, ids: unknown[]): Promise<Record<string, unknown>[]> {
  const k = knex as KnexLike;
  const client = k.client!;
  const sql = sqlOf(k, table, idColumn, ids.length);
  const bindings = client._formatBindings(ids);
  const connection = await client.acquireConnection();
  try {
    if (client.emit) {
      client.emit('query', { __knexUid: connection.__knexUid, __knexTxId: connection.__knexTxId, method: 'select', sql, bindings, options: {} });
    }
    return statementOf(connection, sql).all(...bindings);
  } finally {
    await client.releaseConnection(connection);
  }
}

function sqlOf(knex: KnexLike, table: string, idColumn: string, count: number): string {
  const owner = (knex.client!.config ?? knex.client!) as object;
  let known = sqlCache.get(owner);
  if (!known) sqlCache.set(owner, (known = new Map()));
  const key = `${table}\u0000${idColumn}\u0000${count}`;
  let sql = known.get(key);
  if (sql === undefined) {
    sql = knex(table).whereIn(idColumn, Array.from({ length: count }, (_v, i) => i)).toSQL().toNative().sql;
    if (known.size < MAX_STATEMENTS) known.set(key, sql);
  }
  return sql;
}

function statementOf(connection: Connection, sql: string): Statement {
  let known = statementCache.get(connection);
  if (!known) statementCache.set(connection, (known = new Map()));
  let statement = known.get(sql);
  if (!statement) {
    statement = connection.prepare(sql);
    if (known.size >= MAX_STATEMENTS) known.clear();
    known.set(sql, statement);
  }
  return statement;
}
