/**
 * The example app on PostgreSQL (a schema of its own) and MariaDB (a
 * database of its own), and on Redis as its broker: it migrates, seeds,
 * serves its API and streams its events on each.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import knexFactory from 'knex';
import { createExampleApp } from '../../example-app/app';
import type { ExampleAppOptions } from '../../example-app/app';
import { AtrClient } from '../../src/client/index';
import { silentLogger } from '../../src/logger';
import { MYSQL_URL, POSTGRES_URL, REDIS_URL, requireMariadb, requirePostgres, requireRedis } from '../helpers/services';

const unique = `atr_example_${process.pid}_${randomBytes(3).toString('hex')}`;

/** Boots the app, signs in, makes a post and sees its event arrive; then closes. */
async function exercise(options: ExampleAppOptions): Promise<void> {
  const app = await createExampleApp({ port: 0, logger: silentLogger, ...options });
  const client = { current: undefined as AtrClient | undefined };
  try {
    const session = await (await fetch(`${app.url}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'bob@acme.test', password: 'password' }),
    })).json();
    assert.equal(session.organization.name, 'Acme');
    const auth = { authorization: `Bearer ${session.token}`, 'content-type': 'application/json' };
    client.current = new AtrClient({ url: `${app.url.replace('http', 'ws')}/ws/organization/${session.organization.id}?token=${session.token}` });
    await new Promise((resolve) => client.current!.once('atr.ready', resolve));
    const event = new Promise<any>((resolve) => client.current!.once('post.created', resolve));
    const res = await fetch(`${app.url}/api/posts`, { method: 'POST', headers: auth, body: JSON.stringify({ title: 'On a real database', body: 'ünïcode ✓' }) });
    assert.equal(res.status, 201);
    const post = await res.json();
    const got = await event;
    assert.deepEqual(got.record, post);
    assert.equal(got.record.body, 'ünïcode ✓');
    const list = await (await fetch(`${app.url}/api/posts`, { headers: auth })).json();
    assert.deepEqual(list.map((p: any) => p.title), ['On a real database', 'Welcome to Acme']);
  } finally {
    await client.current?.close();
    await app.close();
  }
}

describe('example app on other databases and brokers', () => {
  it('migrates, seeds and serves on PostgreSQL, in a schema of its own', async () => {
    await requirePostgres();
    const admin = knexFactory({ client: 'pg', connection: POSTGRES_URL });
    try {
      await exercise({ databaseUrl: POSTGRES_URL, databaseSchema: unique });
      // A second start finds the schema migrated and seeded, and keeps the data.
      const app = await createExampleApp({ port: 0, logger: silentLogger, databaseUrl: POSTGRES_URL, databaseSchema: unique });
      await app.close();
      const { rows } = await admin.raw('select count(*)::int as n from ??.organizations', [unique]);
      assert.equal(rows[0].n, 2);
    } finally {
      await admin.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [unique]);
      await admin.destroy();
    }
  });

  it('migrates, seeds and serves on MariaDB, in a database of its own', async () => {
    await requireMariadb();
    const admin = knexFactory({ client: 'mysql2', connection: MYSQL_URL });
    const url = new URL(MYSQL_URL);
    url.pathname = `/${unique}`;
    try {
      await admin.raw('CREATE DATABASE ?? CHARACTER SET utf8mb4', [unique]);
      await exercise({ databaseUrl: url.toString() });
    } finally {
      await admin.raw('DROP DATABASE IF EXISTS ??', [unique]);
      await admin.destroy();
    }
  });

  it('streams its events through Redis when given REDIS_URL', async () => {
    await requireRedis();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atr-example-redis-'));
    try {
      await exercise({ databaseUrl: path.join(dir, 'db.sqlite3'), redisUrl: REDIS_URL, channelPrefix: `${unique}:` });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
