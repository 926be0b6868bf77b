import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay } from '../../src/client/backoff';
import { Positions, scopeOfEvent } from '../../src/client/positions';

describe('client backoff', () => {
  it('doubles the delay per attempt up to the cap when there is no jitter', () => {
    const opts = { initialDelay: 100, maxDelay: 1000, jitter: 0 };
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, opts)), [100, 200, 400, 800, 1000, 1000]);
  });

  it('keeps a jittered delay between (1 - jitter) and 1 times the exponential delay', () => {
    const low = backoffDelay(3, { initialDelay: 100, jitter: 0.5, random: () => 0 });
    const high = backoffDelay(3, { initialDelay: 100, jitter: 0.5, random: () => 0.999999 });
    assert.equal(low, 200);
    assert.equal(high, 400);
  });

  it('spreads the delays of many clients instead of sending them back at once', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(4)));
    assert.ok(delays.size > 10, `only ${delays.size} distinct delays`);
  });
});

describe('client positions', () => {
  it('takes the scope of an event as its routing key minus its name', () => {
    assert.equal(scopeOfEvent({ name: 'post.created', routingKey: 'organization.7.post.created' }), 'organization.7');
    assert.equal(scopeOfEvent({ name: 'post.created', routingKey: 'post.created' }), '');
    assert.equal(scopeOfEvent({ name: 'post.created', routingKey: 'organization.7.project.%2E.post.created' }), 'organization.7.project.%2E');
    assert.equal(scopeOfEvent({ name: 'post.created', routingKey: 'organization.7.post.updated' }), undefined);
  });

  it('remembers the last event id of each scope and nothing of events without an id', () => {
    const p = new Positions();
    p.record({ id: '1-000001', name: 'post.created', routingKey: 'organization.7.post.created' });
    p.record({ id: '1-000002', name: 'post.updated', routingKey: 'organization.7.post.updated' });
    p.record({ id: '5-000000', name: 'post.created', routingKey: 'organization.8.post.created' });
    p.record({ name: 'post.created', routingKey: 'organization.9.post.created' });
    assert.deepEqual(p.toJSON(), { 'organization.7': '1-000002', 'organization.8': '5-000000' });
    assert.equal(p.get('organization.7'), '1-000002');
  });
});
