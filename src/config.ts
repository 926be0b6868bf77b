/**
 * Options, their defaults, and validation that names the wrong option and
 * what it accepts. Defaults are merged once, here.
 */
import type { Broker, HistoryOptions } from './brokers/broker';
import type { EventSerializerClass } from './event';
import { AtrConfigError, codes } from './errors';
import type { Logger } from './logger';
import { consoleLogger } from './logger';
import { RequestAuthenticator } from './server/request-authenticator';
import { RequestScope } from './server/request-scope';

export interface AtrOptions {
  /** `'memory'` (default), a `redis://`/`rediss://` URL, a `redis+cluster://host:port,host:port` URL, or a Broker. */
  broker?: string | Broker;
  /** The RequestAuthenticator subclass that decides who may connect. Default: everybody (with a warning). */
  authenticateWith?: typeof RequestAuthenticator;
  /** The RequestScope subclass that decides which scope(s) a connection listens to. */
  scopeWith?: typeof RequestScope;
  /** A class `new (event) → { toJSON() }`; default: the envelope of the README with the model's toJSON(). */
  eventSerializer?: EventSerializerClass;
  /** Origins allowed to open a websocket; unset: all. A request with no Origin header is always allowed. */
  allowedOrigins?: string[];
  /** Largest frame a client may send, in bytes (1 MiB). Larger: close 1009. */
  maxPayload?: number;
  /** Bytes queued for one slow client before it is cut off with 1013 (4 MiB). */
  maxBufferedBytes?: number;
  /** How often the server pings each client, ms (30 s). A client silent for two intervals is terminated. */
  heartbeatInterval?: number;
  /** Messages a client may send per second before it is closed with 1008 (20). */
  maxClientMessagesPerSecond?: number;
  /** Prefix of every broker channel and key ('atr:'). */
  channelPrefix?: string;
  /** Most events kept per scope for resume (1000). */
  historyMaxLength?: number;
  /** Oldest event kept per scope for resume, ms (24 h). */
  historyMaxAge?: number;
  /** A pino-compatible logger. Default: warnings and errors to stderr. */
  logger?: Logger;
  /** Called with every error atr reports (besides the logger). */
  onError?: (error: Error, context: Record<string, unknown>) => void;
}

export interface ResolvedOptions {
  broker: string | Broker;
  authenticateWith: typeof RequestAuthenticator;
  scopeWith: typeof RequestScope;
  eventSerializer: EventSerializerClass | undefined;
  allowedOrigins: string[] | undefined;
  maxPayload: number;
  maxBufferedBytes: number;
  heartbeatInterval: number;
  maxClientMessagesPerSecond: number;
  channelPrefix: string;
  history: HistoryOptions;
  logger: Logger;
  onError: ((error: Error, context: Record<string, unknown>) => void) | undefined;
  /** true when authenticateWith was not given. */
  openAccess: boolean;
}

export const DEFAULTS = {
  broker: 'memory',
  maxPayload: 1024 * 1024,
  maxBufferedBytes: 4 * 1024 * 1024,
  heartbeatInterval: 30_000,
  maxClientMessagesPerSecond: 20,
  channelPrefix: 'atr:',
  historyMaxLength: 1000,
  historyMaxAge: 24 * 60 * 60 * 1000,
} as const;

const KNOWN = new Set([
  'broker', 'authenticateWith', 'scopeWith', 'eventSerializer', 'allowedOrigins', 'maxPayload',
  'maxBufferedBytes', 'heartbeatInterval', 'maxClientMessagesPerSecond', 'channelPrefix',
  'historyMaxLength', 'historyMaxAge', 'logger', 'onError',
]);

function fail(option: string, accepts: string, got: unknown): never {
  throw new AtrConfigError(
    option === 'broker' ? codes.CONFIG_BROKER : codes.CONFIG_OPTION,
    `The "${option}" option must be ${accepts}; got ${describe(got)}`,
  );
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'null prototype'})`;
  return `${typeof value} ${String(value)}`;
}

/** An empty string counts as unset (an empty environment variable). */
function unset(value: unknown): boolean {
  return value === undefined || value === '';
}

/** Node's timers and ws's limits overflow past 2^31-1 (a longer timeout fires after 1 ms). */
const MAX_INT = 2147483647;

function positiveInt(options: Record<string, unknown>, name: string, fallback: number, min = 1): number {
  const value = options[name];
  if (unset(value)) return fallback;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > MAX_INT) {
    fail(name, `an integer from ${min} to ${MAX_INT}`, value);
  }
  return n;
}

function isSubclass(value: unknown, base: Function): boolean {
  return typeof value === 'function' && (value === base || value.prototype instanceof base);
}

function isBroker(value: unknown): value is Broker {
  const b = value as Broker;
  return typeof value === 'object' && value !== null &&
    typeof b.publish === 'function' && typeof b.subscribe === 'function' &&
    typeof b.unsubscribe === 'function' && typeof b.on === 'function';
}

/** Each host of the URL must parse; a cluster URL lists several (`redis+cluster://h1:7000,h2:7001`). */
function redisUrlParses(url: string): boolean {
  const m = /^[a-z+]+:\/\/([^@/]*@)?([^/]*)(.*)$/.exec(url);
  if (!m || m[2] === '') return false;
  return m[2]!.split(',').every((host) => URL.canParse(`redis://${m[1] ?? ''}${host}${m[3]}`));
}

export function validateBrokerOption(broker: unknown): string | Broker {
  if (unset(broker)) return DEFAULTS.broker;
  if (typeof broker === 'string') {
    if (broker === 'memory') return broker;
    if (/^(redis|rediss|redis\+cluster|rediss\+cluster):\/\/./.test(broker) && redisUrlParses(broker)) return broker;
  } else if (isBroker(broker)) {
    return broker;
  }
  return fail('broker', `'memory', a redis:// or rediss:// URL, a redis+cluster:// URL, or a Broker object`, broker);
}

/** Validates options and merges the defaults; throws AtrConfigError naming the first wrong option. */
export function resolveOptions(input: AtrOptions = {}): ResolvedOptions {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new AtrConfigError(codes.CONFIG_OPTION, `configure() takes an options object; got ${describe(input)}`);
  }
  const options = input as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new AtrConfigError(
        codes.CONFIG_UNKNOWN_OPTION,
        `Unknown option "${key}"; the options are: ${[...KNOWN].join(', ')}`,
      );
    }
  }
  const broker = validateBrokerOption(options.broker);
  const authenticateWith = unset(options.authenticateWith) ? RequestAuthenticator : options.authenticateWith;
  if (!isSubclass(authenticateWith, RequestAuthenticator)) {
    fail('authenticateWith', 'a class that extends RequestAuthenticator', authenticateWith);
  }
  const scopeWith = unset(options.scopeWith) ? RequestScope : options.scopeWith;
  if (!isSubclass(scopeWith, RequestScope)) fail('scopeWith', 'a class that extends RequestScope', scopeWith);
  const eventSerializer = options.eventSerializer;
  if (!unset(eventSerializer) && (typeof eventSerializer !== 'function' || typeof eventSerializer.prototype?.toJSON !== 'function')) {
    fail('eventSerializer', 'a class whose instances have a toJSON() method', eventSerializer);
  }
  let allowedOrigins = options.allowedOrigins;
  if (typeof allowedOrigins === 'string') allowedOrigins = allowedOrigins === '' ? undefined : allowedOrigins.split(',').map((o) => o.trim());
  if (allowedOrigins !== undefined) {
    const accepts = 'a non-empty array of origins such as "https://app.example.com" (scheme and host, no path), or "*"';
    if (!Array.isArray(allowedOrigins) || allowedOrigins.length === 0) fail('allowedOrigins', accepts, allowedOrigins);
    const wrong = allowedOrigins.find((o) => typeof o !== 'string' || !/^https?:\/\/[^/]+$|^\*$/.test(o));
    if (wrong !== undefined) fail('allowedOrigins', accepts, wrong);
  }
  const channelPrefix = unset(options.channelPrefix) ? DEFAULTS.channelPrefix : options.channelPrefix;
  if (typeof channelPrefix !== 'string' || /[{}\s*?[\]]/.test(channelPrefix)) {
    fail('channelPrefix', 'a string without braces, spaces or pattern characters', channelPrefix);
  }
  const logger = unset(options.logger) ? consoleLogger() : options.logger;
  const l = logger as Logger;
  if (!l || typeof l.error !== 'function' || typeof l.warn !== 'function' || typeof l.info !== 'function' || typeof l.debug !== 'function') {
    fail('logger', 'a pino-compatible logger with error, warn, info and debug methods', logger);
  }
  const onError = options.onError;
  if (!unset(onError) && typeof onError !== 'function') fail('onError', 'a function (error, context) => void', onError);

  return {
    broker,
    authenticateWith: authenticateWith as typeof RequestAuthenticator,
    scopeWith: scopeWith as typeof RequestScope,
    eventSerializer: (unset(eventSerializer) ? undefined : eventSerializer) as EventSerializerClass | undefined,
    allowedOrigins: allowedOrigins as string[] | undefined,
    maxPayload: positiveInt(options, 'maxPayload', DEFAULTS.maxPayload),
    maxBufferedBytes: positiveInt(options, 'maxBufferedBytes', DEFAULTS.maxBufferedBytes),
    heartbeatInterval: positiveInt(options, 'heartbeatInterval', DEFAULTS.heartbeatInterval, 10),
    maxClientMessagesPerSecond: positiveInt(options, 'maxClientMessagesPerSecond', DEFAULTS.maxClientMessagesPerSecond),
    channelPrefix,
    history: {
      maxLength: positiveInt(options, 'historyMaxLength', DEFAULTS.historyMaxLength),
      maxAgeMs: positiveInt(options, 'historyMaxAge', DEFAULTS.historyMaxAge),
    },
    logger: l,
    onError: onError as ResolvedOptions['onError'],
    openAccess: unset(options.authenticateWith),
  };
}
