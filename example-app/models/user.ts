import { Model } from 'objection';
import type { Pojo } from 'objection';

export class User extends Model {
  static override tableName = 'users';
  id!: number;
  organization_id!: number;
  email!: string;
  name!: string;
  password_hash!: string;
  created_at!: string;

  /** The hash never leaves the app. */
  override $formatJson(json: Pojo): Pojo {
    const { password_hash: _hidden, ...rest } = super.$formatJson(json);
    return rest;
  }
}
