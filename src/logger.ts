/** A pino-compatible logger: pino, bunyan-like objects, or the console fallback below. */
export interface Logger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** Warnings and errors to stderr, one line each; info and debug only when ATR_DEBUG is set. */
export function consoleLogger(): Logger {
  const debug = Boolean(process.env.ATR_DEBUG);
  const line = (level: string, obj: object, msg?: string) => {
    const { err, ...rest } = obj as { err?: unknown };
    const extra = Object.keys(rest).length > 0 ? ` ${safeJson(rest)}` : '';
    const error = err instanceof Error ? ` ${(err as { code?: string }).code ?? err.name}: ${err.message}` : '';
    process.stderr.write(`atr ${level}: ${msg ?? ''}${error}${extra}\n`);
  };
  return {
    error: (obj, msg) => line('error', obj, msg),
    warn: (obj, msg) => line('warn', obj, msg),
    info: (obj, msg) => { if (debug) line('info', obj, msg); },
    debug: (obj, msg) => { if (debug) line('debug', obj, msg); },
  };
}

/** A logger that says nothing (tests that provoke errors on purpose). */
export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return '[unprintable]';
  }
}
