/**
 * The models bound to one app's database and Atr, so that several apps (tests)
 * can live in one process.
 */
import type { Knex } from 'knex';
import type { Atr } from '../../src/index';
import { Organization } from './organization';
import { Post } from './post';
import { User } from './user';

export interface Models {
  Organization: typeof Organization;
  User: typeof User;
  Post: typeof Post;
}

export function bindModels(knex: Knex, atr: Atr): Models {
  const BoundPost = Post.bindKnex(knex);
  BoundPost.atr = atr;
  return { Organization: Organization.bindKnex(knex), User: User.bindKnex(knex), Post: BoundPost };
}

export { Organization, Post, User };
