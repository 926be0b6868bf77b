import { Model } from 'objection';

export class Organization extends Model {
  static override tableName = 'organizations';
  id!: number;
  name!: string;
  created_at!: string;
}
