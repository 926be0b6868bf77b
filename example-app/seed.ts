/**
 * The example's people and a first post per organization: Acme (alice, bob)
 * and Globex (carol), password `password`. Runs once, on an empty database;
 * straight through knex, so the seed publishes nothing.
 */
import type { Knex } from 'knex';
import { hashPassword } from './auth/password';

export const SEED_PASSWORD = 'password';
export const SEED_USERS = [
  { email: 'alice@acme.test', name: 'Alice', organization: 'Acme' },
  { email: 'bob@acme.test', name: 'Bob', organization: 'Acme' },
  { email: 'carol@globex.test', name: 'Carol', organization: 'Globex' },
] as const;

export async function seed(knex: Knex): Promise<boolean> {
  const [{ count }] = (await knex('organizations').count({ count: '*' })) as Array<{ count: number | string }>;
  if (Number(count) > 0) return false;
  const now = new Date().toISOString();
  const hash = await hashPassword(SEED_PASSWORD);
  await knex.transaction(async (trx) => {
    const orgIds = new Map<string, number>();
    for (const name of ['Acme', 'Globex']) {
      await trx('organizations').insert({ name, created_at: now });
      const row = await trx('organizations').where({ name }).first('id');
      orgIds.set(name, Number(row.id));
    }
    const userIds = new Map<string, number>();
    for (const u of SEED_USERS) {
      // Each user gets their own salt.
      const password_hash = u.email === SEED_USERS[0].email ? hash : await hashPassword(SEED_PASSWORD);
      await trx('users').insert({ organization_id: orgIds.get(u.organization), email: u.email, name: u.name, password_hash, created_at: now });
      const row = await trx('users').where({ email: u.email }).first('id');
      userIds.set(u.email, Number(row.id));
    }
    await trx('posts').insert([
      { organization_id: orgIds.get('Acme'), author_id: userIds.get('alice@acme.test'), title: 'Welcome to Acme', body: 'Posts here appear live for everybody in Acme.', created_at: now, updated_at: now },
      { organization_id: orgIds.get('Globex'), author_id: userIds.get('carol@globex.test'), title: 'Welcome to Globex', body: 'Only Globex members see this.', created_at: now, updated_at: now },
    ]);
  });
  return true;
}
