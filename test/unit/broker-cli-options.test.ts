import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { jsonLogger } from '../../src/cli/json-logger';
import { describeBroker } from '../../src/cli/main';
import { atrOptionsOf, parseCommandLine } from '../../src/cli/options';

describe('atr-server option helpers', () => {
  it('maps flags to atr options, leaving the server-only ones out', () => {
    const parsed = parseCommandLine(['start', '--redis', 'redis://r:6379', '--allowed-origins', 'https://a.example, https://b.example', '--history-max-length', '50']);
    assert.equal(parsed.command, 'start');
    if (parsed.command !== 'start') return;
    assert.deepEqual(atrOptionsOf(parsed.settings), {
      broker: 'redis://r:6379',
      allowedOrigins: ['https://a.example', 'https://b.example'],
      historyMaxLength: 50,
    });
  });

  it('never logs a Redis password', () => {
    assert.equal(describeBroker('redis://:secret@redis.internal:6379/2'), 'redis://***@redis.internal:6379/2');
    assert.equal(describeBroker('redis+cluster://user:pw@a:1,b:2'), 'redis+cluster://***@a:1,b:2');
    assert.equal(describeBroker('redis://redis.internal:6379'), 'redis://redis.internal:6379');
  });

  it('writes one JSON line per record with pino level numbers, above the threshold only', () => {
    const lines: string[] = [];
    const logger = jsonLogger('info', (line) => lines.push(line));
    logger.debug({ a: 1 }, 'hidden');
    const err = Object.assign(new Error('boom'), { code: 'ATR_ERR_X' });
    logger.error({ err, channel: 'atr:{x.1}', big: 10n }, 'failed');
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.endsWith('\n'));
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(record.level, 50);
    assert.equal(record.msg, 'failed');
    assert.equal(record.channel, 'atr:{x.1}');
    assert.equal(record.big, '10');
    assert.deepEqual({ ...(record.err as object), stack: undefined }, { type: 'Error', message: 'boom', code: 'ATR_ERR_X', stack: undefined });
    assert.equal(typeof record.time, 'number');
  });
});
