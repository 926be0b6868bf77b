/**
 * A type test, compiled by `npx tsc -p tsconfig.check.json` (never run):
 * Publishable keeps Objection's static typing.
 */
import { Model } from 'objection';
import type { QueryBuilder } from 'objection';
import { createAtr, Publishable, registry } from '../../src/index';
import type { PublishableStatics } from '../../src/index';

class Post extends Publishable(Model) {
  static override tableName = 'posts';
  static override publicationScope = ['organization_id'];
  static override publishableActions = ['created', 'destroyed'];
  static override publishedAttributes = ['id', 'title'];
  static override atr = createAtr();
  id!: number;
  title!: string;
  organization_id!: number;
}

class BaseModel extends Publishable(Model) {}
class Comment extends BaseModel {
  static override tableName = 'comments';
  body!: string;
}

export async function typed(): Promise<void> {
  const posts: Post[] = await Post.query();
  const one: Post | undefined = await Post.query().findById(1);
  const inserted: Post = await Post.query().insert({ title: 'x', organization_id: 7 });
  const patched: number = await Post.query().patch({ title: 'y' }).where('id', 1);
  const builder: QueryBuilder<Post, Post[]> = Post.query();
  const comments: Comment[] = await Comment.query().where('body', 'like', '%x%');
  const statics: PublishableStatics = Post;
  registry.register(Post, Comment);
  void [posts, one, inserted, patched, builder, comments, statics];

  // @ts-expect-error Post.query() yields Posts, not Comments
  const wrong: Comment[] = await Post.query();
  // @ts-expect-error title is a string
  await Post.query().insert({ title: 3 });
  // @ts-expect-error no such static on a Publishable model
  Post.publicationScopes;
  void wrong;
}
