/**
 * The example app's database: a knex instance from `DATABASE_URL` (an SQLite
 * file path by default, or `postgres://…`, `mysql://…`/`mariadb://…`), its
 * migrations (from migrations/, listed here so they load the same under tsx
 * and from a bundle) and its seed.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import * as organizationsUsersPosts from '../migrations/20261203000000_organizations_users_posts';

export const DEFAULT_SQLITE_FILE = path.join(__dirname, 'data', 'example.sqlite3');

const MIGRATIONS: Record<string, { up(knex: Knex): Promise<void>; down(knex: Knex): Promise<void> }> = {
  '20261203000000_organizations_users_posts': organizationsUsersPosts,
};

/** Knex's migrator, fed from the list above. */
const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(MIGRATIONS).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => MIGRATIONS[name]!,
};

export interface DatabaseOptions {
  /** A file path (SQLite), `sqlite:path`, `postgres://…`, `mysql://…` or `mariadb://…`. Default: example-app/data/example.sqlite3. */
  url?: string;
  /** PostgreSQL only: the schema to use (created when missing). */
  schema?: string;
}

/** Which knex client a database URL needs. */
export function knexConfigOf(options: DatabaseOptions = {}): Knex.Config {
  const url = options.url || DEFAULT_SQLITE_FILE;
  if (/^postgres(ql)?:\/\//.test(url)) {
    return { client: 'pg', connection: url, pool: { min: 0, max: 5 }, ...(options.schema ? { searchPath: [options.schema] } : {}) };
  }
  if (/^(mysql|mariadb):\/\//.test(url)) {
    return { client: 'mysql2', connection: url.replace(/^mariadb:/, 'mysql:'), pool: { min: 0, max: 5 } };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^(sqlite|file):/.test(url)) {
    throw new TypeError(`DATABASE_URL must be an SQLite file path, postgres://…, mysql://… or mariadb://…; got ${JSON.stringify(url)}`);
  }
  const filename = url.replace(/^(sqlite|file):(\/\/)?/, '');
  if (filename !== ':memory:') mkdirSync(path.dirname(path.resolve(filename)), { recursive: true });
  return { client: 'better-sqlite3', connection: { filename }, useNullAsDefault: true };
}

/** Opens the database, creates the schema if asked, runs the migrations. */
export async function openDatabase(options: DatabaseOptions = {}): Promise<Knex> {
  const config = knexConfigOf(options);
  const knex = knexFactory(config);
  try {
    if (config.client === 'pg' && options.schema) {
      await knex.raw('CREATE SCHEMA IF NOT EXISTS ??', [options.schema]);
    }
    if (config.client === 'better-sqlite3') {
      // Several connections of one process share the file; foreign keys are off by default in SQLite.
      await knex.raw('PRAGMA foreign_keys = ON');
    }
    await knex.migrate.latest({ migrationSource, tableName: 'atr_example_migrations' });
  } catch (err) {
    await knex.destroy();
    throw err;
  }
  return knex;
}
