import type { IncomingMessage } from 'node:http';
import { scopeKey } from '../routing';
import type { RequestAuthenticator } from './request-authenticator';
import type { RequestContext } from './request-context';
import { parseCookies } from './request-context';

/**
 * Decides which scope(s) a connection listens to, and whether it may.
 * `routingKey()` returns one scope or several; `valid()` (may be async) can
 * refuse, say, an organization the user is not a member of.
 *
 * The default reads the path as pairs: `/organization/7` → `organization.7`.
 * Build scopes with `this.scopeKey(name, value, ...)` so that odd values
 * (dots, `*`, unicode) are encoded; a raw string that is not a well-formed
 * scope is refused.
 *
 * @example
 * class OrganizationScope extends RequestScope {
 *   routingKey() { return this.scopeKey('organization', this.segments[1]); }
 *   valid() { return this.segments[0] === 'organization' && String(this.user.organization_id) === this.segments[1]; }
 * }
 */
export class RequestScope {
  readonly request: IncomingMessage;
  readonly params: Record<string, string>;
  readonly segments: string[];
  readonly authenticator: RequestAuthenticator;
  private cookieCache: Record<string, string> | undefined;

  constructor(context: RequestContext, authenticator: RequestAuthenticator) {
    this.request = context.request;
    this.params = context.params;
    this.segments = context.segments;
    this.authenticator = authenticator;
  }

  /** What the authenticator established (`authenticator.user`). */
  get user(): any {
    return this.authenticator.user;
  }

  get cookies(): Record<string, string> {
    this.cookieCache ??= parseCookies(this.request.headers.cookie);
    return this.cookieCache;
  }

  /** `scopeKey('organization', 7)` → `organization.7`, values encoded. */
  scopeKey(...pairs: unknown[]): string {
    return scopeKey(...pairs);
  }

  /** The scope(s) to listen to. Default: the path segments read as name/value pairs. */
  routingKey(): string | string[] | Promise<string | string[]> {
    if (this.segments.length === 0 || this.segments.length % 2 !== 0) return [];
    // A name that cannot be a scope name (`a.b`) is any visitor's typo, not
    // a server error: no scope, so 403, and nothing in the error log.
    for (let i = 0; i < this.segments.length; i += 2) {
      if (!/^[A-Za-z0-9_-]+$/.test(this.segments[i]!)) return [];
    }
    return scopeKey(...this.segments);
  }

  /** false to refuse (403). Default: true. */
  valid(): boolean | Promise<boolean> {
    return true;
  }
}
