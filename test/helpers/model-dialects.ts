/**
 * The databases the model suite runs on (SQLite, PostgreSQL, MariaDB), with
 * the tables of the model tests under a per-file prefix, and a factory of
 * fresh Publishable model classes bound to one database and one Atr.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach } from 'node:test';
import Knex from 'knex';
import type { Knex as KnexType } from 'knex';
import { Model } from 'objection';
import { createAtr } from '../../src/atr';
import type { Atr } from '../../src/atr';
import { silentLogger } from '../../src/logger';
import { Publishable } from '../../src/publishable';
import { MYSQL_URL, POSTGRES_URL, requireMariadb, requirePostgres } from './services';

export type DialectName = 'sqlite' | 'postgres' | 'mariadb';
export const DIALECTS: DialectName[] = ['sqlite', 'postgres', 'mariadb'];

export interface Database {
  name: DialectName;
  knex: KnexType;
  /** A second, independent connection pool (to look from outside a transaction). */
  other: KnexType;
  /** The pool for the bigint table: on SQLite with safeIntegers, as an app that stores bigints must set. */
  numbers: KnexType;
  prefix: string;
  close(): Promise<void>;
}

function config(name: DialectName, file: string | undefined, safeIntegers = false): KnexType.Config {
  if (name === 'sqlite') {
    // safeIntegers: SQLite integers beyond 2^53 stay exact (as bigint) instead of rounding.
    return { client: 'better-sqlite3', connection: { filename: file!, options: { safeIntegers } }, useNullAsDefault: true };
  }
  if (name === 'postgres') return { client: 'pg', connection: POSTGRES_URL, pool: { min: 0, max: 4 } };
  const url = new URL(MYSQL_URL);
  return {
    client: 'mysql2',
    connection: {
      host: url.hostname,
      port: Number(url.port || 3306),
      user: decodeURIComponent(url.username || 'root'),
      password: decodeURIComponent(url.password),
      database: url.pathname.slice(1) || 'test',
      // bigint columns as exact strings, as an app should configure mysql2
      supportBigNumbers: true,
      bigNumberStrings: true,
    },
    pool: { min: 0, max: 4 },
  };
}

/** Opens a database and (re)creates the tables `<prefix>_posts`, `_comments`, `_users`, `_numbers`. */
export async function openDatabase(name: DialectName, prefix: string): Promise<Database> {
  if (name === 'postgres') await requirePostgres();
  if (name === 'mariadb') await requireMariadb();
  let dir: string | undefined;
  let file: string | undefined;
  if (name === 'sqlite') {
    dir = mkdtempSync(path.join(os.tmpdir(), 'atr-models-'));
    file = path.join(dir, 'test.sqlite');
  }
  const knex = Knex(config(name, file));
  const other = Knex(config(name, file));
  const numbers = name === 'sqlite' ? Knex(config(name, file, true)) : knex;
  if (name === 'sqlite') {
    // WAL lets the second connection read while the first holds a write transaction.
    await knex.raw('pragma journal_mode = wal');
  }
  const db: Database = {
    name,
    knex,
    other,
    numbers,
    prefix,
    async close() {
      await dropTables(knex, prefix);
      await knex.destroy();
      await other.destroy();
      if (numbers !== knex) await numbers.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  await dropTables(knex, prefix);
  await knex.schema.createTable(`${prefix}_posts`, (t) => {
    t.increments('id').primary();
    t.integer('organization_id').nullable();
    t.string('title');
    t.text('body').nullable();
    t.integer('views').notNullable().defaultTo(0);
    t.string('password_hash').nullable();
    t.string('api_token').nullable();
    t.timestamp('created_at').notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable(`${prefix}_comments`, (t) => {
    t.increments('id').primary();
    t.integer('post_id').nullable();
    t.integer('organization_id').nullable();
    t.string('body');
  });
  await knex.schema.createTable(`${prefix}_numbers`, (t) => {
    t.bigIncrements('id').primary();
    t.string('note').notNullable().defaultTo('filled by the database');
    t.bigInteger('big').nullable();
    t.binary('blob').nullable();
    t.timestamp('at').nullable();
  });
  return db;
}

async function dropTables(knex: KnexType, prefix: string): Promise<void> {
  for (const table of ['comments', 'posts', 'numbers']) await knex.schema.dropTableIfExists(`${prefix}_${table}`);
}

/** Fresh model classes on one database and one Atr. */
export function makeModels(db: Database, atr: Atr) {
  class Post extends Publishable(Model) {
    static override tableName = `${db.prefix}_posts`;
    static override publicationScope = ['organization_id'];
    static override atr = atr;
    id!: number;
    organization_id!: number | null;
    title!: string;
    body?: string | null;
    views?: number;
    password_hash?: string | null;
    api_token?: string | null;
    created_at?: unknown;
    comments?: Comment[];

    override $formatJson(json: Record<string, unknown>) {
      const out = super.$formatJson(json);
      delete out.password_hash;
      delete out.api_token;
      return out;
    }

    static override get relationMappings() {
      return {
        comments: {
          relation: Model.HasManyRelation,
          modelClass: Comment,
          join: { from: `${db.prefix}_posts.id`, to: `${db.prefix}_comments.post_id` },
        },
      };
    }
  }

  class Comment extends Publishable(Model) {
    static override tableName = `${db.prefix}_comments`;
    static override publicationScope = ['organization_id'];
    static override atr = atr;
    id!: number;
    post_id!: number | null;
    organization_id!: number | null;
    body!: string;
    post?: Post;

    static override get relationMappings() {
      return {
        post: {
          relation: Model.BelongsToOneRelation,
          modelClass: Post,
          join: { from: `${db.prefix}_comments.post_id`, to: `${db.prefix}_posts.id` },
        },
      };
    }
  }

  class NumberRow extends Publishable(Model) {
    static override tableName = `${db.prefix}_numbers`;
    static override resourceName = 'number_row';
    static override atr = atr;
    id!: number;
    big?: string | number | bigint | null;
    blob?: Buffer | null;
    at?: Date | string | null;
  }

  Post.knex(db.knex);
  Comment.knex(db.knex);
  NumberRow.knex(db.numbers);
  return { Post, Comment, NumberRow };
}

export interface ModelSuite {
  db: Database;
  atr: Atr;
  models: ReturnType<typeof makeModels>;
}

/**
 * The hooks every model suite shares: open `dialect` under `prefix` with a
 * fresh Atr (errors reported go to `errors`), hand them to `bind`, empty the
 * tables `clear` names before each test, and fail a test that reported an
 * error.
 */
export function useModelSuite(
  dialect: DialectName,
  prefix: string,
  errors: Error[],
  clear: (models: ModelSuite['models']) => Array<{ tableName: string }>,
  bind: (suite: ModelSuite) => void,
): void {
  let suite: ModelSuite;
  before(async () => {
    const db = await openDatabase(dialect, prefix);
    const atr = createAtr({ logger: silentLogger, onError: (err) => errors.push(err) });
    suite = { db, atr, models: makeModels(db, atr) };
    bind(suite);
  });
  after(async () => {
    await suite.atr.close();
    await suite.db.close();
  });
  beforeEach(async () => {
    for (const model of clear(suite.models)) await suite.db.knex(model.tableName).delete();
    errors.length = 0;
  });
  afterEach(() => {
    assert.deepEqual(errors.map((e) => e.message), [], 'errors were reported');
  });
}
