import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requirePostgres, requireRedis } from '../helpers/services';

const root = path.resolve(__dirname, '../..');

// A benchmark is not a test: this only checks that the bench code runs, at a
// tiny size, and writes its report. It asserts no speed.
describe('npm run bench (tiny size)', () => {
  it('runs every workload against the floor, Socket.IO and atr (publish() and model inserts), and writes JSON, Markdown and SVG', async () => {
    await requireRedis();
    await requirePostgres();
    const out = mkdtempSync(path.join(os.tmpdir(), 'atr-bench-test-'));
    try {
      await new Promise<void>((resolve, reject) => {
        execFile(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--tiny', '--out', out], { cwd: root, timeout: 150_000 }, (err, _stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve());
      });
      const results = JSON.parse(readFileSync(path.join(out, 'tiny.json'), 'utf8'));
      assert.deepEqual(results.errors, []);
      const targetsOf = (workload: string) => [...new Set(results[workload].map((r: { target: string }) => r.target))].sort();
      for (const workload of ['fanout', 'latency']) assert.deepEqual(targetsOf(workload), ['atr', 'atr-model', 'floor', 'socketio'], workload);
      for (const workload of ['scopes', 'memory']) assert.deepEqual(targetsOf(workload), ['atr', 'floor', 'socketio'], workload);
      for (const row of results.fanout) {
        assert.ok(row.deliveries > 0, `${row.target} delivered`);
        assert.equal(row.closedByServer, 0);
      }
      for (const row of results.latency) assert.equal(row.samples, row.expectedSamples, `${row.target}: every sampled event arrived`);
      assert.deepEqual(results.inserts.map((r: { database: string; variant: string }) => `${r.database} ${r.variant}`), [
        'SQLite plain', 'SQLite publishable', 'SQLite publishable, memory broker',
        'PostgreSQL plain', 'PostgreSQL publishable', 'PostgreSQL publishable, memory broker', 'PostgreSQL publishable, publishFromReturning',
      ]);
      assert.ok(results.checks.length >= 5);
      assert.match(readFileSync(path.join(out, 'tiny.md'), 'utf8'), /## Targets[\s\S]*atr \/ floor/);
      assert.match(readFileSync(path.join(out, 'tiny.svg'), 'utf8'), /^<svg [\s\S]*<\/svg>\n$/);
      assert.ok(existsSync(path.join(out, 'tiny.json')));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
