/**
 * The `atr-server` command: options, environment, config modules, errors,
 * exit codes and SIGTERM.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { run } from '../../src/cli/main';
import { SPECS, parseCommandLine } from '../../src/cli/options';
import { OwnRedis, freePort, redisCli, startOwnRedis } from '../helpers/redis-server';
import { TestClient, httpStatus, startAtrServer, waitUntil } from '../helpers/atr-server-process';

const root = path.resolve(__dirname, '../..');
const exec = promisify(execFile);

async function runCli(argv: string[], env: NodeJS.ProcessEnv = {}, cwd = root) {
  let stdout = '';
  let stderr = '';
  const code = await run({ argv, env, cwd, stdout: (t) => { stdout += t; }, stderr: (t) => { stderr += t; } });
  return { code, stdout, stderr };
}

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'atr-cli-'));
  const src = (p: string) => JSON.stringify(path.join(root, 'src', p));
  writeFileSync(path.join(dir, 'token.cjs'), `
const { RequestAuthenticator } = require(${src('server/request-authenticator.ts')});
class TokenAuthenticator extends RequestAuthenticator {
  matches() { return this.params.token === 'cjs-secret'; }
}
module.exports = { authenticateWith: TokenAuthenticator, heartbeatInterval: 5000 };
`);
  // The server runs from the sources here: the ES module takes the class from the same
  // CommonJS module instance (an app would import it from 'atr', also CommonJS inside).
  writeFileSync(path.join(dir, 'token.mjs'), `
import { createRequire } from 'node:module';
const { RequestAuthenticator } = createRequire(import.meta.url)(${src('server/request-authenticator.ts')});
class TokenAuthenticator extends RequestAuthenticator {
  matches() { return this.params.token === 'esm-secret'; }
}
export default async () => ({ authenticateWith: TokenAuthenticator });
`);
  writeFileSync(path.join(dir, 'unknown-option.cjs'), 'module.exports = { brokr: "memory" };\n');
  writeFileSync(path.join(dir, 'broken.cjs'), 'module.exports = {;\n');
  writeFileSync(path.join(dir, 'array.mjs'), 'export default [1, 2];\n');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('atr-server options', () => {
  it('documents every option and its environment variable in --help, exit 0', async () => {
    const { code, stdout } = await runCli(['--help']);
    assert.equal(code, 0);
    for (const spec of SPECS) {
      assert.ok(stdout.includes(`--${spec.flag} <`), `--${spec.flag} documented`);
      for (const env of spec.env) assert.ok(stdout.includes(env), `${env} documented`);
    }
    assert.match(stdout, /^Usage: atr-server start \[options\]/);
  });

  it('runs as the package bin (bin/atr-server.js from the build)', async () => {
    if (!existsSync(path.join(root, 'dist/cli/main.js'))) {
      await exec(process.execPath, [path.join(root, 'scripts/build.mjs')], { cwd: root });
    }
    const { stdout } = await exec(process.execPath, [path.join(root, 'bin/atr-server.js'), '--help']);
    assert.match(stdout, /--redis <url>/);
    await assert.rejects(exec(process.execPath, [path.join(root, 'bin/atr-server.js'), 'start', '--port', 'nope']), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.equal(err.stderr, 'atr-server: --port must be a port number from 0 to 65535; got "nope"\nRun atr-server --help for the options.\n');
      return true;
    });
  });

  it('takes flags over environment variables over defaults, and empty variables as unset', () => {
    const env = { ATR_HOST: '', ATR_PORT: '8000', REDIS_URL: 'redis://from-redis-url:6379', ATR_LOG_LEVEL: '' };
    const parsed = parseCommandLine(['start', '--port', '9000'], env);
    assert.equal(parsed.command, 'start');
    if (parsed.command !== 'start') return;
    assert.equal(parsed.settings.host, '127.0.0.1');
    assert.equal(parsed.settings.port, 9000);
    assert.equal(parsed.settings.redis, 'redis://from-redis-url:6379');
    assert.equal(parsed.settings.logLevel, 'info');
    const fromEnv = parseCommandLine(['start'], { ...env, ATR_REDIS_URL: 'redis://atr:6379' });
    assert.equal(fromEnv.command === 'start' && fromEnv.settings.port, 8000);
    assert.equal(fromEnv.command === 'start' && fromEnv.settings.redis, 'redis://atr:6379');
  });

  it('exits 2 with a clear message on bad options', async () => {
    const cases: [string[], NodeJS.ProcessEnv, string][] = [
      [[], {}, 'atr-server: missing command: atr-server start [options]'],
      [['serve'], {}, 'atr-server: unknown command "serve"; the command is start'],
      [['start', '--colour'], {}, 'atr-server: unknown option --colour'],
      [['start', '--port', '70000'], {}, 'atr-server: --port must be a port number from 0 to 65535; got "70000"'],
      [['start'], { ATR_HEARTBEAT_INTERVAL: 'soon' }, 'atr-server: ATR_HEARTBEAT_INTERVAL must be a whole number from 1 to 2147483647; got "soon"'],
      [['start', '--log-level', 'loud'], {}, 'atr-server: --log-level must be one of debug, info, warn, error, silent; got "loud"'],
      [['start', '--redis', 'http://localhost'], {}, `atr-server: The "broker" option must be 'memory', a redis:// or rediss:// URL, a redis+cluster:// URL, or a Broker object; got "http://localhost"`],
      [['start', '--redis', 'redis://[bad'], {}, `atr-server: The "broker" option must be 'memory', a redis:// or rediss:// URL, a redis+cluster:// URL, or a Broker object; got "redis://[bad"`],
      [['start', '--shutdown-timeout', '99999999999'], {}, 'atr-server: --shutdown-timeout must be a whole number from 1 to 2147483647; got "99999999999"'],
    ];
    for (const [argv, env, message] of cases) {
      const { code, stderr } = await runCli(argv, env);
      assert.equal(code, 2, argv.join(' '));
      assert.equal(stderr, `${message}\nRun atr-server --help for the options.\n`);
    }
  });

  it('exits 2 with a clear message when the config module is missing, broken, wrong or names an unknown option', async () => {
    const missing = await runCli(['start', '--config', './nope.config.js'], {}, dir);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^atr-server: cannot read the config module \.\/nope\.config\.js: no such file \(looked at .*nope\.config\.js\)\n/);
    const broken = await runCli(['start', '--config', path.join(dir, 'broken.cjs')]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /^atr-server: cannot load the config module .*broken\.cjs: Unexpected token/);
    const array = await runCli(['start'], { ATR_CONFIG: path.join(dir, 'array.mjs') });
    assert.equal(array.code, 2);
    assert.match(array.stderr, /must export \(as default\) an object of options; got an array/);
    const unknown = await runCli(['start', '--config', 'unknown-option.cjs'], {}, dir);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^atr-server: Unknown option "brokr"; the options are: broker, /);
  });
});

describe('atr-server processes', () => {
  let redis: OwnRedis;
  before(async () => {
    redis = await startOwnRedis();
  });
  after(async () => {
    await redis.dispose();
  });

  for (const file of ['token.cjs', 'token.mjs']) {
    it(`loads the authenticator from a ${file.endsWith('cjs') ? 'CommonJS' : 'ES'} config module`, async () => {
      const secret = file.endsWith('cjs') ? 'cjs-secret' : 'esm-secret';
      const server = await startAtrServer(['--redis', redis.url, '--config', path.join(dir, file)]);
      try {
        const refused = new TestClient(`ws://127.0.0.1:${server.port}/organization/1?token=wrong`);
        await assert.rejects(refused.opened, /Unexpected server response: 401/);
        const allowed = new TestClient(`ws://127.0.0.1:${server.port}/organization/1?token=${secret}`);
        await allowed.ready();
        allowed.close();
        await allowed.closed;
      } finally {
        await server.stop();
      }
    });
  }

  it('on SIGTERM stops accepting, closes sockets with 1001, unsubscribes and exits 0 in time', async () => {
    const server = await startAtrServer(['--redis', redis.url, '--shutdown-timeout', '3000']);
    const client = new TestClient(`ws://127.0.0.1:${server.port}/organization/5`);
    await client.ready();
    assert.equal(await redisCli(redis.port, 'PUBSUB', 'NUMSUB', 'atr:{organization.5}'), 'atr:{organization.5}\n1');
    const started = Date.now();
    server.child.kill('SIGTERM');
    assert.equal(await client.closed, 1001);
    assert.equal(await server.exited, 0);
    const took = Date.now() - started;
    assert.ok(took < 3000, `exited after ${took} ms`);
    assert.equal(await httpStatus(server.port, '/healthz'), 0, 'no longer accepting');
    assert.equal(await redisCli(redis.port, 'PUBSUB', 'NUMSUB', 'atr:{organization.5}'), 'atr:{organization.5}\n0');
    assert.ok(server.logs.some((l) => l.msg === 'atr-server: stopped'));
  });

  it('starts while Redis is down, says not ready, and becomes ready when Redis comes', async () => {
    const late = new OwnRedis(await freePort());
    const server = await startAtrServer(['--redis', late.url]);
    try {
      assert.equal(await httpStatus(server.port, '/healthz'), 200);
      assert.equal(await httpStatus(server.port, '/readyz'), 503);
      await late.start();
      await waitUntil(async () => (await httpStatus(server.port, '/readyz')) === 200, '/readyz 200', 15_000);
    } finally {
      await server.stop();
      await late.dispose();
    }
  });
});
