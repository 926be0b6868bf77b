/**
 * The example app's tables: organizations, their users, their posts.
 * Times are ISO-8601 text, so every database returns them alike.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('organizations', (t) => {
    t.increments('id').primary();
    t.string('name', 100).notNullable().unique();
    t.string('created_at', 30).notNullable();
  });
  await knex.schema.createTable('users', (t) => {
    t.increments('id').primary();
    t.integer('organization_id').unsigned().notNullable().references('id').inTable('organizations').onDelete('CASCADE');
    t.string('email', 200).notNullable().unique();
    t.string('name', 100).notNullable();
    t.string('password_hash', 255).notNullable();
    t.string('created_at', 30).notNullable();
  });
  await knex.schema.createTable('posts', (t) => {
    t.increments('id').primary();
    t.integer('organization_id').unsigned().notNullable().references('id').inTable('organizations').onDelete('CASCADE');
    t.integer('author_id').unsigned().notNullable().references('id').inTable('users');
    t.string('title', 200).notNullable();
    t.text('body').notNullable();
    t.string('created_at', 30).notNullable();
    t.string('updated_at', 30).notNullable();
    t.index(['organization_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('posts');
  await knex.schema.dropTableIfExists('users');
  await knex.schema.dropTableIfExists('organizations');
}
