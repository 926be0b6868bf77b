/**
 * The options of `atr-server start`: one table drives the parser, the
 * environment variables and `--help`. A flag beats its environment variable,
 * which beats the config module; an empty variable counts as unset.
 */
import { parseArgs } from 'node:util';
import { LOG_LEVELS } from './json-logger';
import type { LogLevel } from './json-logger';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Kind = 'string' | 'port' | 'int' | 'list' | 'level';

interface Spec {
  flag: string;
  key: keyof CliSettings;
  env: string[];
  arg: string;
  kind: Kind;
  help: string;
  fallback?: string;
  /** The atr option it sets, if any (flags like --host are the server's own). */
  atrOption?: string;
}

export const SPECS: Spec[] = [
  { flag: 'host', key: 'host', env: ['ATR_HOST'], arg: 'address', kind: 'string', fallback: '127.0.0.1', help: 'Address to listen on (0.0.0.0 for every interface).' },
  { flag: 'port', key: 'port', env: ['ATR_PORT'], arg: 'number', kind: 'port', fallback: '7777', help: 'Port to listen on (0: any free port, logged at start).' },
  { flag: 'redis', key: 'redis', env: ['ATR_REDIS_URL', 'REDIS_URL'], arg: 'url', kind: 'string', atrOption: 'broker', help: 'The broker: redis://[:password@]host:port[/db], rediss://… (TLS), redis+cluster://host:port,host:port (Redis Cluster), or memory. Default: the config\'s broker, else memory (one process only).' },
  { flag: 'config', key: 'config', env: ['ATR_CONFIG'], arg: 'file', kind: 'string', help: 'A CommonJS or ES module whose default export holds the options of configure() (authenticateWith, scopeWith, eventSerializer, logger, onError, …); it may also be a function returning them.' },
  { flag: 'allowed-origins', key: 'allowedOrigins', env: ['ATR_ALLOWED_ORIGINS'], arg: 'list', kind: 'list', atrOption: 'allowedOrigins', help: 'Comma-separated origins allowed to connect (https://app.example.com). Default: all.' },
  { flag: 'log-level', key: 'logLevel', env: ['ATR_LOG_LEVEL'], arg: 'level', kind: 'level', fallback: 'info', help: 'debug, info, warn, error or silent (JSON lines on stdout; ignored when the config gives a logger).' },
  { flag: 'channel-prefix', key: 'channelPrefix', env: ['ATR_CHANNEL_PREFIX'], arg: 'text', kind: 'string', atrOption: 'channelPrefix', help: 'Prefix of every broker channel and key (atr:). Must match the apps that publish.' },
  { flag: 'heartbeat-interval', key: 'heartbeatInterval', env: ['ATR_HEARTBEAT_INTERVAL'], arg: 'ms', kind: 'int', atrOption: 'heartbeatInterval', help: 'How often each client is pinged (30000); a client silent for two intervals is cut.' },
  { flag: 'max-payload', key: 'maxPayload', env: ['ATR_MAX_PAYLOAD'], arg: 'bytes', kind: 'int', atrOption: 'maxPayload', help: 'Largest frame a client may send (1048576).' },
  { flag: 'max-buffered-bytes', key: 'maxBufferedBytes', env: ['ATR_MAX_BUFFERED_BYTES'], arg: 'bytes', kind: 'int', atrOption: 'maxBufferedBytes', help: 'Bytes queued for one slow client before it is closed with 1013 (4194304).' },
  { flag: 'max-client-messages-per-second', key: 'maxClientMessagesPerSecond', env: ['ATR_MAX_CLIENT_MESSAGES_PER_SECOND'], arg: 'number', kind: 'int', atrOption: 'maxClientMessagesPerSecond', help: 'Messages a client may send per second before it is closed with 1008 (20).' },
  { flag: 'history-max-length', key: 'historyMaxLength', env: ['ATR_HISTORY_MAX_LENGTH'], arg: 'number', kind: 'int', atrOption: 'historyMaxLength', help: 'Most events kept per scope for resume (1000).' },
  { flag: 'history-max-age', key: 'historyMaxAge', env: ['ATR_HISTORY_MAX_AGE'], arg: 'ms', kind: 'int', atrOption: 'historyMaxAge', help: 'Oldest event kept per scope for resume (86400000).' },
  { flag: 'shutdown-timeout', key: 'shutdownTimeout', env: ['ATR_SHUTDOWN_TIMEOUT'], arg: 'ms', kind: 'int', fallback: '10000', help: 'On SIGTERM/SIGINT: longest wait for a graceful close before the process exits anyway.' },
];

export interface CliSettings {
  host: string;
  port: number;
  redis?: string;
  config?: string;
  allowedOrigins?: string[];
  logLevel: LogLevel;
  channelPrefix?: string;
  heartbeatInterval?: number;
  maxPayload?: number;
  maxBufferedBytes?: number;
  maxClientMessagesPerSecond?: number;
  historyMaxLength?: number;
  historyMaxAge?: number;
  shutdownTimeout: number;
}

export type Command = { command: 'help' } | { command: 'version' } | { command: 'start'; settings: CliSettings };

function convert(spec: Spec, raw: string, from: string): unknown {
  switch (spec.kind) {
    case 'port': {
      if (!/^\d+$/.test(raw) || Number(raw) > 65535) throw new UsageError(`${from} must be a port number from 0 to 65535; got ${JSON.stringify(raw)}`);
      return Number(raw);
    }
    case 'int': {
      // Node's timers overflow past 2^31-1 ms (they fire after 1 ms instead).
      if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 2147483647) throw new UsageError(`${from} must be a whole number from 1 to 2147483647; got ${JSON.stringify(raw)}`);
      return Number(raw);
    }
    case 'level': {
      if (!(raw in LOG_LEVELS)) throw new UsageError(`${from} must be one of ${Object.keys(LOG_LEVELS).join(', ')}; got ${JSON.stringify(raw)}`);
      return raw;
    }
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    default:
      return raw;
  }
}

/** Reads argv (without node and the script) and the environment. Throws UsageError. */
export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv = process.env): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        ...Object.fromEntries(SPECS.map((s) => [s.flag, { type: 'string' as const }])),
      },
    });
  } catch (err) {
    throw new UsageError(String((err as Error).message).replace(/^Unknown option '(.*?)'.*$/s, 'unknown option $1'));
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] === 'help') return { command: 'help' };
  if (values.version) return { command: 'version' };
  if (positionals.length === 0) throw new UsageError('missing command: atr-server start [options]');
  if (positionals[0] !== 'start') throw new UsageError(`unknown command ${JSON.stringify(positionals[0])}; the command is start`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);

  const settings: Record<string, unknown> = {};
  for (const spec of SPECS) {
    const flagValue = (values as Record<string, unknown>)[spec.flag] as string | undefined;
    if (flagValue !== undefined) {
      if (flagValue === '') throw new UsageError(`--${spec.flag} needs a value (${spec.arg})`);
      settings[spec.key] = convert(spec, flagValue, `--${spec.flag}`);
      continue;
    }
    const envName = spec.env.find((name) => env[name] !== undefined && env[name] !== '');
    if (envName) {
      settings[spec.key] = convert(spec, env[envName]!, envName);
      continue;
    }
    if (spec.fallback !== undefined) settings[spec.key] = convert(spec, spec.fallback, `--${spec.flag}`);
  }
  return { command: 'start', settings: settings as unknown as CliSettings };
}

/** The atr options the flags set (they win over the config module's). */
export function atrOptionsOf(settings: CliSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const spec of SPECS) {
    const value = settings[spec.key];
    if (spec.atrOption && value !== undefined) out[spec.atrOption] = value;
  }
  return out;
}

export function helpText(): string {
  const rows = SPECS.map((s) => {
    const left = `  --${s.flag} <${s.arg}>`;
    const extra = [s.env.length ? `env ${s.env.join(' or ')}` : '', s.fallback !== undefined ? `default ${s.fallback}` : ''].filter(Boolean).join('; ');
    return `${left}\n      ${s.help}${extra ? ` [${extra}]` : ''}`;
  });
  return [
    'Usage: atr-server start [options]',
    '',
    'Runs the atr websocket server: clients connect to ws://host:port/<path> (the path goes to',
    'the authenticator and scope of the config); events come from the broker (Redis).',
    'Also answers GET /healthz, GET /readyz (503 while the broker is down) and GET /metrics.',
    'SIGTERM or SIGINT: stops accepting, closes sockets with 1001, exits.',
    '',
    'Options (a flag beats its environment variable, which beats the config module;',
    'empty environment variables count as unset):',
    ...rows,
    '  -h, --help',
    '      This text.',
    '  -v, --version',
    '      The version.',
    '',
    'Example:',
    '  atr-server start --host 0.0.0.0 --port 7777 --redis redis://:secret@redis:6379/0 --config ./atr.config.js',
    '',
    'Exit codes: 0 after a clean shutdown, 1 when the server failed, 2 for wrong options or config.',
    '',
  ].join('\n');
}
