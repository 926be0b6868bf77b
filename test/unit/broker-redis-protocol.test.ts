import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventIdOfStreamId, historyKeyOf, streamIdOfEventId, trimMarkerKeyOf } from '../../src/brokers/redis-scripts';
import { backoff, compareStreamIds } from '../../src/brokers/redis-base';
import { compareEventIds } from '../../src/event';
import { createRedisBroker } from '../../src/brokers/factories';

describe('Redis broker protocol helpers', () => {
  it('turns stream ids into event ids that sort as strings, and back', () => {
    assert.equal(eventIdOfStreamId('1764780000000-5'), '1764780000000-000005');
    assert.equal(eventIdOfStreamId('1764780000000-1234567'), '1764780000000-1234567');
    assert.equal(streamIdOfEventId('1764780000000-000005'), '1764780000000-5');
    assert.equal(streamIdOfEventId('0-000000'), '0-0');
    assert.equal(streamIdOfEventId('garbage'), '0-0');
    const ids = ['1764780000000-10', '1764780000000-9', '1764780000001-0'].map(eventIdOfStreamId);
    assert.deepEqual([...ids].sort(), [ids[1], ids[0], ids[2]]);
    assert.deepEqual([...ids].sort(compareEventIds), [ids[1], ids[0], ids[2]]);
  });

  it('orders stream ids numerically', () => {
    assert.ok(compareStreamIds('10-0', '9-5') > 0);
    assert.ok(compareStreamIds('9-10', '9-9') > 0);
    assert.equal(compareStreamIds('9-9', '9-9'), 0);
  });

  it('keeps a channel, its history and its trim marker under one hash tag', () => {
    const tag = (key: string) => /\{([^}]*)\}/.exec(key)?.[1];
    const channel = 'atr:{organization.7}';
    assert.equal(tag(historyKeyOf(channel)), 'organization.7');
    assert.equal(tag(trimMarkerKeyOf(channel)), 'organization.7');
  });

  it('backs off exponentially with jitter up to the maximum', () => {
    const delay = backoff(100, 5000);
    for (let i = 0; i < 50; i++) {
      const first = delay(0);
      assert.ok(first >= 80 && first <= 120, `first ${first}`);
      const later = delay(30);
      assert.ok(later >= 4000 && later <= 6000, `later ${later}`);
    }
    assert.ok(delay(3) > delay(0));
  });
});

describe('Redis broker options', () => {
  it('names a wrong tuning option, with a code, before any connection is made', () => {
    for (const [key, value] of [['pingInterval', -1], ['commandTimeout', 2 ** 40], ['connectTimeout', 'soon']] as const) {
      assert.throws(() => createRedisBroker({ url: 'redis://127.0.0.1:6379', [key]: value } as never), {
        code: 'ATR_ERR_CONFIG_OPTION',
        message: `The "${key}" option of the Redis broker must be a number of milliseconds from 0 to 2147483647; got ${String(value)}`,
      });
    }
  });
});
