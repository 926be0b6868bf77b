import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DefaultEventSerializer, compareEventIds, composeMessage, formatEventId, parseEventId, stringifyEventBody,
} from '../../src/event';
import type { ModelEvent } from '../../src/event';

describe('events', () => {
  it('serializes a model event in the envelope of the wire protocol, without the model', () => {
    const event: ModelEvent = {
      name: 'post.updated', action: 'updated', scope: 'organization.7', routingKey: 'organization.7.post.updated',
      recordType: 'Post', record: { id: 3, title: 't', organization_id: 7 }, changes: ['title'],
      occurredAt: '2026-12-03T10:00:00.000Z', model: { secret: 'never' },
    };
    const body = stringifyEventBody(new DefaultEventSerializer(event).toJSON());
    assert.deepEqual(JSON.parse(body), {
      name: 'post.updated', action: 'updated', routingKey: 'organization.7.post.updated', recordType: 'Post',
      record: { id: 3, title: 't', organization_id: 7 }, changes: ['title'], occurredAt: '2026-12-03T10:00:00.000Z',
    });
    assert.doesNotMatch(body, /never/);
  });

  it('serializes a published event with data in place of record', () => {
    const body = stringifyEventBody(new DefaultEventSerializer({
      name: 'invoice.paid', scope: '', routingKey: 'invoice.paid', data: { id: 3 }, occurredAt: 'x',
    }).toJSON());
    assert.deepEqual(JSON.parse(body), { name: 'invoice.paid', routingKey: 'invoice.paid', data: { id: 3 }, occurredAt: 'x' });
  });

  it('carries bigints as strings, buffers as base64 and dates as ISO text', () => {
    const body = stringifyEventBody({
      big: 9007199254740993n, buf: Buffer.from('hi'), bytes: new Uint8Array([1, 2]), at: new Date(0), nested: [{ n: 1n }],
    });
    assert.deepEqual(JSON.parse(body), {
      big: '9007199254740993', buf: 'aGk=', bytes: 'AQI=', at: '1970-01-01T00:00:00.000Z', nested: [{ n: '1' }],
    });
  });

  it('reports a circular structure as a serialize error, not a stack overflow', () => {
    const a: Record<string, unknown> = { id: 1 };
    a.self = { back: a };
    assert.throws(() => stringifyEventBody(a), (err: Error & { code?: string }) => err.code === 'ATR_ERR_SERIALIZE_FAILED' && /circular/.test(err.message));
  });

  it('allows the same object twice when it is not its own ancestor', () => {
    const shared = { id: 1 };
    assert.equal(stringifyEventBody({ a: shared, b: shared, c: [shared, shared] }), '{"a":{"id":1},"b":{"id":1},"c":[{"id":1},{"id":1}]}');
  });

  it('refuses a serializer result that is not an object', () => {
    assert.throws(() => stringifyEventBody('text'), /must produce a JSON object/);
    assert.throws(() => stringifyEventBody(undefined), /must produce a JSON object/);
  });

  it('puts the id first in the delivered message', () => {
    assert.equal(composeMessage('1-000000', '{"name":"a"}'), '{"id":"1-000000","name":"a"}');
    assert.equal(composeMessage('1-000000', '{}'), '{"id":"1-000000"}');
  });

  it('makes ids that sort as strings in publish order within a millisecond and across', () => {
    const ids = [formatEventId(1764780000000, 9), formatEventId(1764780000000, 10), formatEventId(1764780000001, 0)];
    assert.deepEqual([...ids].sort(), ids);
    assert.ok(compareEventIds(ids[0]!, ids[1]!) < 0);
    assert.ok(compareEventIds(ids[2]!, ids[1]!) > 0);
    assert.deepEqual(parseEventId('1764780000000-000010'), [1764780000000, 10]);
    assert.equal(parseEventId('nope'), undefined);
  });
});
