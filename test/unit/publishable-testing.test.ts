/**
 * The test helpers of `atr/testing`: they pass on what was published, and
 * fail, with a message that says what differs, on what was not.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createAtr } from '../../src/atr';
import { silentLogger } from '../../src/logger';
import { captureEvents, expectEvents, expectNoEvents } from '../../src/testing';

const atr = createAtr({ logger: silentLogger });
after(() => atr.close());

describe('atr/testing', () => {
  it('passes when the block published the expected events in order', async () => {
    const published = await expectEvents(
      atr,
      async () => {
        await atr.publish({ scope: 'organization.7', name: 'invoice.paid', data: { id: 3, total: 10 } });
        await atr.publish({ name: 'site.updated' });
      },
      [
        { name: 'invoice.paid', scope: 'organization.7', record: { id: 3 } },
        { name: 'site.updated', scope: '' },
      ],
    );
    assert.equal(published.length, 2);
    assert.equal(published[0]!.routingKey, 'organization.7.invoice.paid');
  });

  it('fails with what differs when a name, a scope, a record value or the count is wrong', async () => {
    const block = () => atr.publish({ scope: 'organization.7', name: 'invoice.paid', data: { id: 3 } });
    await assert.rejects(expectEvents(atr, block, [{ name: 'invoice.sent' }]), {
      name: 'AssertionError',
      message: 'event 1: name "invoice.paid" is not "invoice.sent"\n  published: organization.7.invoice.paid',
    });
    await assert.rejects(expectEvents(atr, block, [{ name: 'invoice.paid', scope: 'organization.8' }]), /went to scope "organization.7", not "organization.8"/);
    await assert.rejects(expectEvents(atr, block, [{ name: 'invoice.paid', record: { id: 4 } }]), /record.id is 3, not 4/);
    await assert.rejects(expectEvents(atr, block, [{ name: 'invoice.paid', without: ['id'] }]), /record holds id/);
    await assert.rejects(expectEvents(atr, block, []), /expected 0 event\(s\), got 1/);
  });

  it('expectNoEvents fails when something was published, and passes when nothing was', async () => {
    await assert.rejects(expectNoEvents(atr, () => atr.publish({ name: 'late.event' })), {
      name: 'AssertionError',
      message: 'expected no events, got 1: late.event',
    });
    await expectNoEvents(atr, () => undefined, { settle: 10 });
  });

  it('leaves out an event handed in before the block, though it leaves the pipeline during it', async () => {
    const earlier = atr.publish({ name: 'earlier.event' });
    const { published } = await captureEvents(atr, () => atr.publish({ name: 'block.event' }));
    assert.deepEqual(published.map((p) => p.name), ['block.event']);
    await earlier;
  });

  it('captureEvents returns the block result and the dropped events with their errors', async () => {
    const failing = createAtr({ logger: silentLogger, eventSerializer: class { toJSON() { throw new Error('no'); } } });
    try {
      const { result, published, dropped } = await captureEvents(failing, async () => {
        await failing.publish({ name: 'will.drop' }).catch(() => undefined);
        return 42;
      });
      assert.equal(result, 42);
      assert.equal(published.length, 0);
      assert.equal(dropped.length, 1);
      assert.match(dropped[0]!.error.message, /The event serializer threw for will.drop: no/);
    } finally {
      await failing.close();
    }
  });
});
