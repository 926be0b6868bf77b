/**
 * Who may open `/ws/organization/:id`: a valid token (`?token=` or
 * `Authorization: Bearer`) of a user of that organization. No token or a bad
 * one: 401; another organization: 403, both before the upgrade.
 */
import { RequestAuthenticator, RequestScope } from '../../src/index';
import type { User } from '../models/user';
import { bearerToken, verifyToken } from './token';

export function websocketAuth(secret: string, Users: typeof User): { Authenticator: typeof RequestAuthenticator; Scope: typeof RequestScope } {
  class TokenAuthenticator extends RequestAuthenticator {
    override async matches(): Promise<boolean> {
      const id = verifyToken(this.params.token ?? bearerToken(this.headers.authorization), secret);
      if (id === undefined) return false;
      this.user = await Users.query().findById(id);
      return this.user !== undefined;
    }
  }

  class OrganizationScope extends RequestScope {
    override routingKey(): string {
      return this.scopeKey('organization', this.segments[1] ?? '');
    }

    override valid(): boolean {
      const user = this.user as User;
      return this.segments.length === 2 && this.segments[0] === 'organization' && String(user.organization_id) === this.segments[1];
    }
  }

  return { Authenticator: TokenAuthenticator, Scope: OrganizationScope };
}
