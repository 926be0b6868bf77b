import type { IncomingMessage } from 'node:http';
import type { RequestContext } from './request-context';
import { parseCookies } from './request-context';

/**
 * Decides whether a websocket request may connect. Subclass it and implement
 * `matches()` (it may be async); whatever you keep on `this` (say
 * `this.user`) the scope can read through `this.authenticator`.
 *
 * @example
 * class TokenAuthenticator extends RequestAuthenticator {
 *   async matches() {
 *     this.user = await Users.findByToken(this.params.token);
 *     return this.user !== undefined;
 *   }
 * }
 */
export class RequestAuthenticator {
  readonly request: IncomingMessage;
  readonly params: Record<string, string>;
  readonly segments: string[];
  /** What the authenticator established; the scope reads it. */
  user: unknown = undefined;
  private cookieCache: Record<string, string> | undefined;

  constructor(context: RequestContext) {
    this.request = context.request;
    this.params = context.params;
    this.segments = context.segments;
  }

  get headers(): IncomingMessage['headers'] {
    return this.request.headers;
  }

  get cookies(): Record<string, string> {
    this.cookieCache ??= parseCookies(this.request.headers.cookie);
    return this.cookieCache;
  }

  /** true to accept the request. The default accepts everybody. */
  matches(): boolean | Promise<boolean> {
    return true;
  }
}
