// The package loads by its own name from both require and import (dist/ is built by `npm test` first).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');
const run = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();

describe('package exports', () => {
  it('loads by its own name with require', () => {
    assert.equal(run(['-e', "const a = require('atr'); console.log(typeof a.configure, typeof a.publish, typeof a.scopeKey)"]), 'function function function');
  });

  it('loads by its own name with import, with named exports', () => {
    assert.equal(run(['--input-type=module', '-e', "import { configure, registry } from 'atr'; console.log(typeof configure, typeof registry.channels)"]), 'function function');
  });

  it('gives the same error classes to both', () => {
    assert.equal(run(['--input-type=module', '-e', "import { AtrConfigError } from 'atr'; import { createRequire } from 'node:module'; const r = createRequire(import.meta.url); console.log(AtrConfigError === r('atr').AtrConfigError)"]), 'true');
  });
});
