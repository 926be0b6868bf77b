/**
 * Reconnect delays: exponential, capped, with jitter so that a thousand
 * browsers cut off by one server restart do not come back in one wave.
 */
export interface BackoffOptions {
  /** First delay, ms (500). */
  initialDelay?: number;
  /** Largest delay, ms (30 000). */
  maxDelay?: number;
  /** Growth per failed attempt (2). */
  factor?: number;
  /** Share of the delay that is random, 0..1 (0.5): the delay lies in [d·(1-jitter), d]. */
  jitter?: number;
  /** Source of randomness (Math.random); tests pass their own. */
  random?: () => number;
}

export const BACKOFF_DEFAULTS = { initialDelay: 500, maxDelay: 30_000, factor: 2, jitter: 0.5 } as const;

/**
 * The delay before reconnect attempt `attempt` (1 for the first).
 *
 * @example
 * backoffDelay(3, { initialDelay: 100, jitter: 0 });   // 400
 * backoffDelay(3, { initialDelay: 100 });              // between 200 and 400
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.initialDelay ?? BACKOFF_DEFAULTS.initialDelay;
  const max = options.maxDelay ?? BACKOFF_DEFAULTS.maxDelay;
  const factor = options.factor ?? BACKOFF_DEFAULTS.factor;
  const jitter = options.jitter ?? BACKOFF_DEFAULTS.jitter;
  const random = options.random ?? Math.random;
  const exponent = Math.max(0, attempt - 1);
  const capped = Math.min(max, initial * Math.pow(factor, exponent));
  return Math.round(capped * (1 - jitter + jitter * random()));
}

/** Checks backoff options once, with messages that name the option. */
export function validateBackoff(options: BackoffOptions): void {
  for (const name of ['initialDelay', 'maxDelay'] as const) {
    const v = options[name];
    if (v !== undefined && (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v))) {
      throw new TypeError(`The "reconnect.${name}" option must be a number of milliseconds >= 0; got ${String(v)}`);
    }
  }
  if (options.factor !== undefined && (typeof options.factor !== 'number' || !(options.factor >= 1))) {
    throw new TypeError(`The "reconnect.factor" option must be a number >= 1; got ${String(options.factor)}`);
  }
  if (options.jitter !== undefined && (typeof options.jitter !== 'number' || !(options.jitter >= 0 && options.jitter <= 1))) {
    throw new TypeError(`The "reconnect.jitter" option must be a number from 0 to 1; got ${String(options.jitter)}`);
  }
}
