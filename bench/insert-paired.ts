/**
 * What each part of Publishable costs an awaited insert, with the machine's
 * drift cancelled: plain and the Publishable variants take turns in many
 * short rounds in one process, and each variant's ratio to the plain round
 * next to it is taken per round (median over rounds), beside the process's
 * CPU per insert. Not part of `npm run bench`:
 *
 *   npx tsx bench/insert-paired.ts [--db sqlite|sqlite-file|pg] [--rounds 20] [--per 200]
 *
 * Add `node --cpu-prof --import tsx bench/insert-paired.ts …` for a profile.
 *
 * Variants: plain Objection; Publishable with no insert events (its hooks
 * only); Publishable on the memory broker and on Redis, each with the
 * default read-back and with publishFromReturning (RETURNING applies on
 * PostgreSQL only).
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
import { row } from './inserts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

function openDatabase(db: string, dir: string): Knex {
  if (db === 'pg') return knexFactory({ client: 'pg', connection: process.env.ATR_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test', pool: { min: 1, max: 4 } });
  const filename = db === 'sqlite-file' ? path.join(dir, 'paired.sqlite') : ':memory:';
  return knexFactory({ client: 'better-sqlite3', connection: { filename }, useNullAsDefault: true });
}

async function main(): Promise<void> {
  const db = arg('--db', 'pg');
  const rounds = Number(arg('--rounds', '20'));
  const per = Number(arg('--per', '200'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atr-paired-'));
  const knex = openDatabase(db, dir);
  const table = `paired_posts_${process.pid}`;
  if (db === 'sqlite-file') {
    // WAL, as the benchmark and apps run SQLite.
    await knex.raw('PRAGMA journal_mode = WAL');
    await knex.raw('PRAGMA synchronous = NORMAL');
  }
  await knex.schema.dropTableIfExists(table);
  await knex.schema.createTable(table, (t) => {
    t.increments('id');
    t.integer('organization_id');
    t.string('title');
    t.text('body');
    t.string('status');
  });
  const redis = createAtr({ broker: process.env.REDIS_URL || 'redis://127.0.0.1:6379', channelPrefix: `atr-paired-${process.pid}:`, logger: silentLogger });
  const memory = createAtr({ broker: 'memory', logger: silentLogger });
  await Promise.all([redis.connect(), memory.connect()]);
  const publishable = (atr: Atr, fromReturning: boolean, actions = ['created', 'updated', 'destroyed']) =>
    class extends Publishable(Model) {
      static override tableName = table;
      static override publicationScope = ['organization_id'];
      static override resourceName = 'post';
      static override atr = atr;
      static override publishFromReturning = fromReturning;
      static override publishableActions = actions as never;
    };
  class Plain extends Model {
    static override tableName = table;
  }
  type Insertable = { query(k: Knex): { insert(r: object): PromiseLike<unknown> } };
  const variants: Array<[string, Insertable]> = [
    ['plain', Plain as never],
    ['Publishable, hooks only', publishable(memory, false, ['updated']) as never],
    ['Publishable, memory broker', publishable(memory, false) as never],
    ['Publishable, memory broker, publishFromReturning', publishable(memory, true) as never],
    ['Publishable, Redis', publishable(redis, false) as never],
    ['Publishable, Redis, publishFromReturning', publishable(redis, true) as never],
  ];
  const drained = async () => {
    while (memory.pending > 0 || redis.pending > 0) await new Promise((resolve) => setImmediate(resolve));
  };
  try {
    // Warm: V8's optimized code, prepared statements, connections.
    for (const [, M] of variants) for (let i = 0; i < 1000; i++) await M.query(knex).insert(row(i));
    await drained();
    const times = new Map<string, number[]>(variants.map(([name]) => [name, []]));
    const cpu = new Map<string, number[]>(variants.map(([name]) => [name, []]));
    for (let round = 0; round < rounds; round++) {
      for (const [name, M] of variants) {
        const started = performance.now();
        const before = process.cpuUsage();
        for (let i = 0; i < per; i++) await M.query(knex).insert(row(i));
        await drained();
        const used = process.cpuUsage(before);
        times.get(name)!.push(((performance.now() - started) * 1000) / per);
        cpu.get(name)!.push((used.user + used.system) / per);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    const plain = times.get('plain')!;
    console.log(`| variant (${db}, ${rounds} rounds × ${per} inserts) | µs / insert (median) | app CPU µs / insert (median) | inserts/s vs plain (median of paired rounds) |`);
    console.log('|---|---|---|---|');
    for (const [name] of variants) {
      const mine = times.get(name)!;
      console.log(`| ${name} | ${median(mine).toFixed(1)} | ${median(cpu.get(name)!).toFixed(1)} | ${median(mine.map((t, i) => plain[i]! / t)).toFixed(2)}× |`);
    }
  } finally {
    await Promise.all([redis.close(), memory.close()]);
    await knex.schema.dropTableIfExists(table);
    await knex.destroy();
    rmSync(dir, { recursive: true, force: true });
    // The history streams this run left in Redis.
    const { createClient } = await import('redis');
    const raw = createClient({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' });
    await raw.connect();
    for await (const keys of raw.scanIterator({ MATCH: `atr-paired-${process.pid}:*`, COUNT: 1000 })) if (keys.length > 0) await raw.del(keys);
    await raw.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
