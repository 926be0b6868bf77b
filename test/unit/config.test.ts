import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolveOptions, DEFAULTS } from '../../src/config';
import { AtrConfigError } from '../../src/errors';
import { RequestAuthenticator } from '../../src/server/request-authenticator';
import { RequestScope } from '../../src/server/request-scope';
import { MemoryBroker } from '../../src/brokers/memory';
import { silentLogger } from '../../src/logger';

function rejects(options: unknown, message: string, code = 'ATR_ERR_CONFIG_OPTION') {
  assert.throws(() => resolveOptions(options as never), (err: AtrConfigError) => {
    assert.ok(err instanceof AtrConfigError);
    assert.ok(err instanceof TypeError);
    assert.equal(err.code, code);
    assert.equal(err.message, message);
    return true;
  });
}

describe('configuration', () => {
  it('merges the documented defaults', () => {
    const o = resolveOptions({ logger: silentLogger });
    assert.equal(o.broker, 'memory');
    assert.equal(o.maxPayload, 1024 * 1024);
    assert.equal(o.maxBufferedBytes, DEFAULTS.maxBufferedBytes);
    assert.equal(o.heartbeatInterval, 30_000);
    assert.equal(o.channelPrefix, 'atr:');
    assert.deepEqual(o.history, { maxLength: 1000, maxAgeMs: 86_400_000 });
    assert.equal(o.authenticateWith, RequestAuthenticator);
    assert.equal(o.scopeWith, RequestScope);
    assert.equal(o.openAccess, true);
  });

  it('treats an empty string (an empty environment variable) as unset', () => {
    const o = resolveOptions({ broker: '', maxPayload: '' as never, allowedOrigins: '' as never, logger: silentLogger });
    assert.equal(o.broker, 'memory');
    assert.equal(o.maxPayload, DEFAULTS.maxPayload);
    assert.equal(o.allowedOrigins, undefined);
  });

  it('accepts redis URLs, cluster URLs and broker objects', () => {
    assert.equal(resolveOptions({ broker: 'redis://:pw@localhost:6379/2' }).broker, 'redis://:pw@localhost:6379/2');
    assert.equal(resolveOptions({ broker: 'rediss://h:6380' }).broker, 'rediss://h:6380');
    assert.equal(resolveOptions({ broker: 'redis+cluster://h:7000,h:7001' }).broker, 'redis+cluster://h:7000,h:7001');
    const broker = new MemoryBroker();
    assert.equal(resolveOptions({ broker }).broker, broker);
  });

  it('names the broker option and what it accepts', () => {
    rejects({ broker: 'amqp://x' }, `The "broker" option must be 'memory', a redis:// or rediss:// URL, a redis+cluster:// URL, or a Broker object; got "amqp://x"`, 'ATR_ERR_CONFIG_BROKER');
    rejects({ broker: 42 }, `The "broker" option must be 'memory', a redis:// or rediss:// URL, a redis+cluster:// URL, or a Broker object; got number 42`, 'ATR_ERR_CONFIG_BROKER');
  });

  it('names an unknown option, so a typo does not pass silently', () => {
    rejects({ allowedOrigin: ['x'] }, 'Unknown option "allowedOrigin"; the options are: broker, authenticateWith, scopeWith, eventSerializer, allowedOrigins, maxPayload, maxBufferedBytes, heartbeatInterval, maxClientMessagesPerSecond, channelPrefix, historyMaxLength, historyMaxAge, logger, onError', 'ATR_ERR_CONFIG_UNKNOWN_OPTION');
  });

  it('names each wrong option and what it accepts', () => {
    rejects({ authenticateWith: class Foo {} }, 'The "authenticateWith" option must be a class that extends RequestAuthenticator; got function Foo');
    rejects({ scopeWith: {} }, 'The "scopeWith" option must be a class that extends RequestScope; got an object (Object)');
    rejects({ eventSerializer: class X {} }, 'The "eventSerializer" option must be a class whose instances have a toJSON() method; got function X');
    rejects({ maxPayload: -1 }, 'The "maxPayload" option must be an integer from 1 to 2147483647; got number -1');
    rejects({ maxBufferedBytes: 1.5 }, 'The "maxBufferedBytes" option must be an integer from 1 to 2147483647; got number 1.5');
    rejects({ heartbeatInterval: 5 }, 'The "heartbeatInterval" option must be an integer from 10 to 2147483647; got number 5');
    rejects({ allowedOrigins: ['https://ok.example', 'https://a.example/path'] }, 'The "allowedOrigins" option must be a non-empty array of origins such as "https://app.example.com" (scheme and host, no path), or "*"; got "https://a.example/path"');
    rejects({ channelPrefix: 'a{b' }, 'The "channelPrefix" option must be a string without braces, spaces or pattern characters; got "a{b"');
    rejects({ logger: console.log }, 'The "logger" option must be a pino-compatible logger with error, warn, info and debug methods; got function log');
    rejects({ onError: 'x' }, 'The "onError" option must be a function (error, context) => void; got "x"');
    rejects(null, 'configure() takes an options object; got null');
  });

  it('refuses a time so long that Node would fire its timer after 1 ms', () => {
    rejects({ heartbeatInterval: 2 ** 40 }, 'The "heartbeatInterval" option must be an integer from 10 to 2147483647; got number 1099511627776');
    assert.equal(resolveOptions({ heartbeatInterval: 2147483647 }).heartbeatInterval, 2147483647);
  });

  it('refuses a broker URL that does not parse, at configure time', () => {
    rejects({ broker: 'redis://[bad' }, `The "broker" option must be 'memory', a redis:// or rediss:// URL, a redis+cluster:// URL, or a Broker object; got "redis://[bad"`, 'ATR_ERR_CONFIG_BROKER');
    rejects({ broker: 'redis+cluster://h:7000,[x' }, `The "broker" option must be 'memory', a redis:// or rediss:// URL, a redis+cluster:// URL, or a Broker object; got "redis+cluster://h:7000,[x"`, 'ATR_ERR_CONFIG_BROKER');
    assert.equal(resolveOptions({ broker: 'redis+cluster://:pw@h1:7000,h2:7001/0' }).broker, 'redis+cluster://:pw@h1:7000,h2:7001/0');
  });

  it('refuses an empty origin list, which would refuse every browser', () => {
    rejects({ allowedOrigins: [] }, 'The "allowedOrigins" option must be a non-empty array of origins such as "https://app.example.com" (scheme and host, no path), or "*"; got an array');
    rejects({ allowedOrigins: ',' as never }, 'The "allowedOrigins" option must be a non-empty array of origins such as "https://app.example.com" (scheme and host, no path), or "*"; got ""');
  });

  it('reads numbers given as digit strings (environment variables)', () => {
    assert.equal(resolveOptions({ maxPayload: '2048' as never }).maxPayload, 2048);
  });

  it('splits a comma-separated origin list', () => {
    assert.deepEqual(resolveOptions({ allowedOrigins: 'https://a.example, http://b.example:3000' as never }).allowedOrigins, ['https://a.example', 'http://b.example:3000']);
  });

  it('accepts subclasses of the request classes', () => {
    class A extends RequestAuthenticator {}
    class S extends RequestScope {}
    const o = resolveOptions({ authenticateWith: A, scopeWith: S });
    assert.equal(o.authenticateWith, A);
    assert.equal(o.scopeWith, S);
    assert.equal(o.openAccess, false);
  });
});
