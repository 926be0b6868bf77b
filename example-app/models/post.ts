import { Model } from 'objection';
import { Publishable } from '../../src/index';

/** Publishes `post.created`, `post.updated`, `post.destroyed` to `organization.<id>`. */
export class Post extends Publishable(Model) {
  static override tableName = 'posts';
  static override publicationScope = ['organization_id'];
  id!: number;
  organization_id!: number;
  author_id!: number;
  title!: string;
  body!: string;
  created_at!: string;
  updated_at!: string;
}
