/**
 * The logger of `atr-server` when the config names none: one JSON object per
 * line on stdout, with pino's level numbers and field names (`level`, `time`,
 * `msg`, `err`), so that the same log pipeline reads both.
 */
import os from 'node:os';
import type { Logger } from '../logger';

export const LOG_LEVELS = { debug: 20, info: 30, warn: 40, error: 50, silent: Infinity } as const;
export type LogLevel = keyof typeof LOG_LEVELS;

function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { type: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (err.stack) out.stack = err.stack;
  if (err.cause !== undefined) out.cause = serializeError(err.cause);
  return out;
}

export function jsonLogger(level: LogLevel = 'info', write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  const threshold = LOG_LEVELS[level];
  const base = { pid: process.pid, hostname: os.hostname() };
  const line = (n: number) => (obj: object, msg?: string) => {
    if (n < threshold) return;
    const { err, ...rest } = (obj ?? {}) as { err?: unknown };
    const record: Record<string, unknown> = { level: n, time: Date.now(), ...base, ...rest };
    if (err !== undefined) record.err = serializeError(err);
    if (msg !== undefined) record.msg = msg;
    let text: string;
    try {
      text = JSON.stringify(record, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    } catch {
      text = JSON.stringify({ level: n, time: Date.now(), ...base, msg });
    }
    write(text + '\n');
  };
  return { debug: line(20), info: line(30), warn: line(40), error: line(50) };
}
