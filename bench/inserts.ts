/**
 * Model insert throughput with and without Publishable, on SQLite and
 * PostgreSQL, publishing to Redis: one awaited insert after another (a
 * request handler's pattern), the Publishable run timed until its last event
 * reached Redis. Plain and the Publishable variants (read-back, memory
 * broker, and on PostgreSQL publishFromReturning) take turns, six times each, so that drift in
 * the machine's load hits them alike.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { Model } from 'objection';
import { createAtr, Publishable } from '../src/index';
import type { Atr } from '../src/index';
import { silentLogger } from '../src/logger';
import { RETURNING_VARIANT } from './results';
import type { Results } from './results';
import type { BenchEnv } from './session';

/** Plain, Publishable and Publishable-on-memory take turns this many times. */
const ROUNDS = 6;

const POSTGRES_URL = process.env.ATR_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** The row every insert benchmark writes (about 300 bytes of JSON as an event). */
export function row(i: number) {
  return {
    organization_id: 1 + (i % 10),
    title: `Post number ${i}`,
    body: 'Quarterly numbers are in: revenue up, churn down, the new onboarding flow ships on Monday.',
    status: 'published',
  };
}

async function createTable(knex: Knex, table: string): Promise<void> {
  await knex.schema.dropTableIfExists(table);
  await knex.schema.createTable(table, (t) => {
    t.increments('id');
    t.integer('organization_id').notNullable();
    t.string('title').notNullable();
    t.text('body');
    t.string('status');
  });
}

async function timeInserts(insert: (i: number) => PromiseLike<unknown>, from: number, rows: number, settle: () => Promise<void>): Promise<number> {
  const started = performance.now();
  for (let i = from; i < from + rows; i++) await insert(i);
  await settle();
  return (performance.now() - started) / 1000;
}

async function benchDatabase(name: string, knex: Knex, atr: Atr, memoryAtr: Atr, table: string, rows: number, progress: (line: string) => void, withReturning: boolean): Promise<Results['inserts']> {
  await createTable(knex, table);
  class PlainPost extends Model {
    static override tableName = table;
  }
  class LivePost extends Publishable(Model) {
    static override tableName = table;
    static override publicationScope = ['organization_id'];
    static override resourceName = 'post';
    static override atr = atr;
  }
  // The same model taking inserted rows from RETURNING instead of a read-back (its own choice).
  class ReturningPost extends LivePost {
    static override publishFromReturning = true;
  }
  // The same model on the memory broker: what Publishable costs without Redis (its read-back, the event).
  class MemoryPost extends Publishable(Model) {
    static override tableName = table;
    static override publicationScope = ['organization_id'];
    static override resourceName = 'post';
    static override atr = memoryAtr;
  }
  const plain = (i: number) => PlainPost.query(knex).insert(row(i));
  const live = (i: number) => LivePost.query(knex).insert(row(i));
  const inMemory = (i: number) => MemoryPost.query(knex).insert(row(i));
  const returning = (i: number) => ReturningPost.query(knex).insert(row(i));
  const published = async () => {
    // Each turn, not each millisecond: a short run must not pay a timer's granularity.
    while (atr.pending > 0 || memoryAtr.pending > 0) await new Promise((resolve) => setImmediate(resolve));
  };
  const none = async () => undefined;
  // Warm up every path (connections, prepared statements, the JIT's
  // optimized code): an app's inserts run warm, and a path that is still
  // interpreted would be measured for V8's tiers, not for its own work.
  const warm = Math.min(1000, Math.max(50, rows));
  await timeInserts(plain, 0, warm, none);
  await timeInserts(live, 0, warm, published);
  await timeInserts(inMemory, 0, warm, published);
  if (withReturning) await timeInserts(returning, 0, warm, published);
  // Short runs that take turns: drift in the machine's load (this machine is
  // shared, PostgreSQL's fsyncs vary) hits all four alike.
  const per = Math.max(1, Math.floor(rows / ROUNDS));
  let plainSeconds = 0;
  let liveSeconds = 0;
  let memorySeconds = 0;
  let returningSeconds = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const base = warm + round * 4 * per;
    progress(`inserts ${name}: round ${round + 1} of ${ROUNDS}`);
    plainSeconds += await timeInserts(plain, base, per, none);
    liveSeconds += await timeInserts(live, base + per, per, published);
    memorySeconds += await timeInserts(inMemory, base + 2 * per, per, published);
    if (withReturning) returningSeconds += await timeInserts(returning, base + 3 * per, per, published);
  }
  await knex.schema.dropTableIfExists(table);
  return [
    { database: name, variant: 'plain', rows: ROUNDS * per, insertsPerSec: (ROUNDS * per) / plainSeconds },
    { database: name, variant: 'publishable', rows: ROUNDS * per, insertsPerSec: (ROUNDS * per) / liveSeconds },
    { database: name, variant: 'publishable, memory broker', rows: ROUNDS * per, insertsPerSec: (ROUNDS * per) / memorySeconds },
    ...(withReturning ? [{ database: name, variant: RETURNING_VARIANT, rows: ROUNDS * per, insertsPerSec: (ROUNDS * per) / returningSeconds }] : []),
  ];
}

export async function runInserts(env: BenchEnv, rows: number, progress: (line: string) => void): Promise<Results['inserts']> {
  const atr = createAtr({ broker: env.redisUrl, channelPrefix: `${env.prefix}ins:`, logger: silentLogger });
  await atr.connect();
  const memoryAtr = createAtr({ broker: 'memory', logger: silentLogger });
  const table = `bench_posts_${process.pid}`;
  const results: Results['inserts'] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atr-bench-'));
  const sqlite = knexFactory({ client: 'better-sqlite3', connection: { filename: path.join(dir, 'bench.sqlite') }, useNullAsDefault: true });
  try {
    // WAL, as apps run SQLite: without it every insert waits for an fsync and the disk, not the code, is measured.
    await sqlite.raw('PRAGMA journal_mode = WAL');
    await sqlite.raw('PRAGMA synchronous = NORMAL');
    // publishFromReturning does nothing on SQLite (it reads back anyway, more cheaply).
    results.push(...(await benchDatabase('SQLite', sqlite, atr, memoryAtr, table, rows, progress, false)));
  } finally {
    await sqlite.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  const pg = knexFactory({ client: 'pg', connection: POSTGRES_URL, pool: { min: 1, max: 4 } });
  try {
    results.push(...(await benchDatabase('PostgreSQL', pg, atr, memoryAtr, table, rows, progress, true)));
  } finally {
    await pg.destroy();
    await atr.close();
    await memoryAtr.close();
  }
  return results;
}
