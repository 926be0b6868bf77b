// `npm test`: builds, then runs each test file in its own process with node's
// test runner, one file at a time (they share the local Redis and databases).
// test/helpers/leak-check.mjs fails a file that leaves a handle open (socket,
// timer, pool); --test-force-exit then ends it, and a file that hangs anyway
// is killed after ATR_TEST_FILE_TIMEOUT_MS and counted as failed.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const leakCheck = pathToFileURL(path.join(root, 'test/helpers/leak-check.mjs')).href;
const FILE_TIMEOUT_MS = Number(process.env.ATR_TEST_FILE_TIMEOUT_MS || 10 * 60 * 1000);

execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit', cwd: root });

function find(dir) {
  const out = [];
  let names = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...find(full));
    else if (/\.test\.(ts|mjs|cjs)$/.test(name)) out.push(full);
  }
  return out;
}

const args = process.argv.slice(2);
const files = args.length > 0
  ? args.map((f) => path.resolve(f))
  : ['unit', 'integration', 'e2e'].flatMap((d) => find(path.join(root, 'test', d)).sort());

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--import', leakCheck, '--test', '--test-force-exit', '--test-reporter=spec', '--test-timeout=240000', file],
      { cwd: root, env: { ...process.env, ATR_TEST: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { out += d; process.stderr.write(d); });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const num = (label) => Number((out.match(new RegExp(`ℹ ${label} (\\d+)`)) || [])[1] || 0);
      resolve({ file, code, timedOut, pass: num('pass'), fail: num('fail'), cancelled: num('cancelled'), seconds: (Date.now() - started) / 1000 });
    });
  });
}

const results = [];
for (const file of files) {
  process.stdout.write(`\n▶ ${path.relative(root, file)}\n`);
  results.push(await runFile(file));
}

let passed = 0;
let failed = 0;
console.log('\nsummary');
for (const r of results) {
  const bad = r.code !== 0 || r.timedOut || r.fail > 0 || r.cancelled > 0 || r.pass === 0;
  passed += r.pass;
  failed += r.fail + r.cancelled + (bad && r.fail + r.cancelled === 0 ? 1 : 0);
  const why = r.timedOut ? ' (killed: did not exit; a handle leaked or a test hung)' : r.pass === 0 && r.code === 0 ? ' (no test ran)' : '';
  console.log(`${bad ? '✖' : '✔'} ${path.relative(root, r.file)}  ${r.pass} passed, ${r.fail + r.cancelled} failed, ${r.seconds.toFixed(1)} s${why}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
