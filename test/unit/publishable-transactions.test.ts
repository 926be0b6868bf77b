/**
 * Property: whatever the nesting of transactions and savepoints, and whichever
 * of them commit or roll back, the events published are exactly the inserts
 * that survived, in the order they were written, and the database agrees.
 * (SQLite in memory; the three-dialect suite checks the same on real servers.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import Knex from 'knex';
import type { Knex as KnexType } from 'knex';
import { Model } from 'objection';
import { createAtr } from '../../src/atr';
import { silentLogger } from '../../src/logger';
import { Publishable } from '../../src/publishable';
import { captureEvents } from '../../src/testing';

type Step = { kind: 'insert' } | { kind: 'savepoint'; steps: Step[]; commit: boolean; how: 'throw' | 'call' };
interface Block {
  transaction: boolean;
  steps: Step[];
  commit: boolean;
  how: 'throw' | 'call';
}

const stepArb: fc.Arbitrary<Step> = fc.letrec<{ step: Step }>((tie) => ({
  step: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant<Step>({ kind: 'insert' }),
    fc.record({
      kind: fc.constant<'savepoint'>('savepoint'),
      steps: fc.array(tie('step'), { maxLength: 3 }),
      commit: fc.boolean(),
      how: fc.constantFrom<'throw' | 'call'>('throw', 'call'),
    }),
  ),
})).step;

const blockArb: fc.Arbitrary<Block> = fc.record({
  transaction: fc.boolean(),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 4 }),
  commit: fc.boolean(),
  how: fc.constantFrom<'throw' | 'call'>('throw', 'call'),
});

describe('publishing after commit, for any nesting of transactions and savepoints', () => {
  const knex = Knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
  const atr = createAtr({ logger: silentLogger });
  class Entry extends Publishable(Model) {
    static override tableName = 'entries';
    static override atr = atr;
    id!: number;
    label!: string;
  }
  Entry.knex(knex);

  before(() => knex.schema.createTable('entries', (t) => {
    t.increments('id');
    t.string('label');
  }));
  after(async () => {
    await atr.close();
    await knex.destroy();
  });

  /** Runs the steps; returns the labels that should survive if this level commits. */
  async function runSteps(trx: KnexType | KnexType.Transaction, steps: Step[], next: () => string): Promise<string[]> {
    const kept: string[] = [];
    for (const step of steps) {
      if (step.kind === 'insert') {
        const label = next();
        await Entry.query(trx).insert({ label });
        kept.push(label);
      } else {
        kept.push(...(await runLevel(trx as KnexType.Transaction, step.steps, step.commit, step.how, next)));
      }
    }
    return kept;
  }

  async function runLevel(parent: KnexType, steps: Step[], commit: boolean, how: 'throw' | 'call', next: () => string): Promise<string[]> {
    let kept: string[] = [];
    const rollback = new Error('roll back');
    await parent
      .transaction(async (trx) => {
        kept = await runSteps(trx, steps, next);
        if (!commit) {
          if (how === 'throw') throw rollback;
          await trx.rollback();
        }
      })
      .catch((err: unknown) => {
        if (err !== rollback) throw err;
      });
    return commit ? kept : [];
  }

  it('publishes exactly the surviving inserts, in write order', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(blockArb, { minLength: 1, maxLength: 3 }), async (blocks) => {
        await knex('entries').delete();
        const next = () => `e${++n}`;
        let expected: string[] = [];
        const { published } = await captureEvents(atr, async () => {
          for (const block of blocks) {
            if (block.transaction) expected.push(...(await runLevel(knex, block.steps, block.commit, block.how, next)));
            else expected.push(...(await runSteps(knex, block.steps.filter((s) => s.kind === 'insert'), next)));
          }
        }, { settle: 0 });
        const labels = published.map((p) => (p.message.record as { label: string }).label);
        assert.deepEqual(labels, expected);
        const stored = (await Entry.query().orderBy('id')).map((e) => e.label);
        assert.deepEqual(stored, expected);
        expected = [];
      }),
      { numRuns: 60 },
    );
  });
});
