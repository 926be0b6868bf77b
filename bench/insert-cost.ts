/**
 * Where a Publishable insert's time goes, on SQLite in memory (no disk, so the
 * code is measured): CPU µs per awaited insert for a plain model, a
 * Publishable model that publishes nothing on insert (its hooks only), and
 * Publishable on the memory broker and on Redis. Variants take turns; the
 * medians of the rounds are printed. Not part of `npm run bench`:
 *
 *   npx tsx bench/insert-cost.ts [--rows 3000] [--rounds 5]
 *
 * Add `node --cpu-prof` (`node --cpu-prof --import tsx bench/insert-cost.ts`)
 * for a profile.
 */
import knexFactory from 'knex';
import { Model } from 'objection';
import { createClient } from 'redis';
import { createAtr, Publishable } from '../src/index';
import { silentLogger } from '../src/logger';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

async function main(): Promise<void> {
  const rows = arg('--rows', 3000);
  const rounds = arg('--rounds', 5);
  const knex = knexFactory({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
  await knex.schema.createTable('posts', (t) => {
    t.increments('id');
    t.integer('organization_id');
    t.string('title');
    t.text('body');
    t.string('status');
  });
  const memory = createAtr({ broker: 'memory', logger: silentLogger });
  const redis = createAtr({ broker: process.env.REDIS_URL || 'redis://127.0.0.1:6379', channelPrefix: `atr-insert-cost-${process.pid}:`, logger: silentLogger });
  await Promise.all([memory.connect(), redis.connect()]);
  const publishable = (atr: typeof memory, actions?: string[]) =>
    class extends Publishable(Model) {
      static override tableName = 'posts';
      static override publicationScope = ['organization_id'];
      static override resourceName = 'post';
      static override atr = atr;
      static override publishableActions = (actions ?? ['created', 'updated', 'destroyed']) as never;
    };
  class Plain extends Model {
    static override tableName = 'posts';
  }
  const variants: Array<[string, { query(k: unknown): { insert(r: object): PromiseLike<unknown> } }]> = [
    ['plain', Plain as never],
    ['Publishable, hooks only', publishable(memory, ['updated']) as never],
    ['Publishable, memory broker', publishable(memory) as never],
    ['Publishable, Redis', publishable(redis) as never],
  ];
  const row = (i: number) => ({ organization_id: 1 + (i % 10), title: `Post number ${i}`, body: 'Quarterly numbers are in: revenue up, churn down, the new onboarding flow ships on Monday.', status: 'published' });
  const drained = async () => {
    while (memory.pending > 0 || redis.pending > 0) await new Promise((resolve) => setImmediate(resolve));
  };
  const cpu = new Map<string, number[]>();
  const wall = new Map<string, number[]>();
  for (let round = 0; round <= rounds; round++) {
    for (const [name, M] of variants) {
      const started = performance.now();
      const before = process.cpuUsage();
      for (let i = 0; i < rows; i++) await M.query(knex).insert(row(i));
      await drained();
      const used = process.cpuUsage(before);
      if (round === 0) continue; // warm-up
      (cpu.get(name) ?? cpu.set(name, []).get(name)!).push((used.user + used.system) / rows);
      (wall.get(name) ?? wall.set(name, []).get(name)!).push(((performance.now() - started) * 1000) / rows);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const base = median(cpu.get('plain')!);
  console.log(`| variant (${rows} rows × ${rounds} rounds, SQLite :memory:) | CPU µs / insert | wall µs / insert | CPU vs plain |`);
  console.log('|---|---|---|---|');
  for (const [name] of variants) {
    const c = median(cpu.get(name)!);
    console.log(`| ${name} | ${c.toFixed(1)} | ${median(wall.get(name)!).toFixed(1)} | ${c - base >= 0 ? '+' : ''}${(c - base).toFixed(1)} |`);
  }
  await memory.close();
  await redis.close();
  await knex.destroy();
  // The history streams this run left in Redis.
  const raw = createClient({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' });
  await raw.connect();
  for await (const keys of raw.scanIterator({ MATCH: `atr-insert-cost-${process.pid}:*`, COUNT: 1000 })) if (keys.length > 0) await raw.del(keys);
  await raw.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
