// `npm test`: builds, then runs every test file with node's test runner.
// Files run one at a time: they share the local Redis and databases.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit', cwd: root });

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...find(full));
    else if (name.endsWith('.test.ts') || name.endsWith('.test.mjs') || name.endsWith('.test.cjs')) out.push(full);
  }
  return out;
}
const only = process.argv.slice(2);
const files = only.length > 0 ? only : ['unit', 'integration', 'e2e'].flatMap((d) => find(path.join(root, 'test', d))).sort();
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=180000', '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root, env: { ...process.env, ATR_TEST: '1' } },
);
process.exit(result.status ?? 1);
