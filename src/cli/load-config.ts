/**
 * Loads the `--config` module: CommonJS or ES module, its default export (or
 * `module.exports`) holding the options of `configure()`, or a function
 * (maybe async) that returns them.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from './options';

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

export async function loadConfig(file: string, cwd = process.cwd()): Promise<Record<string, unknown>> {
  const full = path.resolve(cwd, file);
  if (!existsSync(full)) throw new UsageError(`cannot read the config module ${file}: no such file (looked at ${full})`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(full).href)) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`cannot load the config module ${file}: ${(err as Error).message}`);
  }
  let value: unknown = mod.default ?? mod;
  // A CommonJS module compiled from `export default` arrives as { default: … } inside default.
  if (value && typeof value === 'object' && (value as { __esModule?: boolean }).__esModule && 'default' in value) {
    value = (value as { default: unknown }).default;
  }
  if (typeof value === 'function' && !/^class\b/.test(Function.prototype.toString.call(value))) {
    try {
      value = await (value as () => unknown)();
    } catch (err) {
      throw new UsageError(`the config module ${file} threw: ${(err as Error).message}`);
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`the config module ${file} must export (as default) an object of options; got ${describeValue(value)}`);
  }
  return { ...(value as Record<string, unknown>) };
}
