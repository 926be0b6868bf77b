/**
 * Who may connect, to what: the checks a websocket request passes before it
 * gets a reactor. They run the same way before the upgrade (a refusal is an
 * HTTP status) and, when the upgrade happened first, after it (a refusal is a
 * close code). Nothing here touches the socket.
 */
import type { IncomingMessage } from 'node:http';
import type { Atr } from '../atr';
import { AtrError, codes } from '../errors';
import { scopeProblem } from '../routing';
import { parseEventId } from '../event';

/** The query parameter with the positions a client resumes from: JSON `{ scope: eventId }`. */
export const RESUME_PARAM = 'atr_resume';

/** Where a connection resumes each of its scopes, and what was wrong with the request for it. */
export interface Resume {
  positions: Map<string, string>;
  problem?: string;
}

/**
 * Reads `atr_resume`. Only the connection's own scopes count; a malformed
 * value resumes nothing and is answered with atr.error after the upgrade
 * (the client reconnects fine; it only cannot catch up).
 */
export function resumeOf(raw: string | undefined, scopes: readonly string[]): Resume {
  const positions = new Map<string, string>();
  if (raw === undefined || raw === '') return { positions };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { positions, problem: `${RESUME_PARAM} must be JSON {"<scope>":"<event id>"}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { positions, problem: `${RESUME_PARAM} must be JSON {"<scope>":"<event id>"}` };
  }
  const bad: string[] = [];
  for (const scope of scopes) {
    if (!Object.prototype.hasOwnProperty.call(value, scope)) continue;
    const id = (value as Record<string, unknown>)[scope];
    if (parseEventId(id) === undefined) bad.push(scope);
    else positions.set(scope, id as string);
  }
  return bad.length > 0 ? { positions, problem: `${RESUME_PARAM} holds an invalid event id for ${bad.join(', ')}` } : { positions };
}
import type { RequestContext } from './request-context';
import type { RequestAuthenticator } from './request-authenticator';

/** HTTP status of a refusal; `closeCodeOf` maps it to a close code after an upgrade. */
export type RefusalStatus = 400 | 401 | 403 | 500 | 503;

export type Admission =
  | { ok: true; scopes: string[]; user: unknown; resume: Resume }
  | { ok: false; status: RefusalStatus; reason: string };

/** The close code that says, after an upgrade, what the HTTP status says before it. */
export function closeCodeOf(status: RefusalStatus): number {
  switch (status) {
    case 401: return 4401;
    case 403: return 4403;
    case 400: return 1008;
    case 503: return 1001;
    default: return 1011;
  }
}

/**
 * Splits the path below the mount point into percent-decoded segments:
 * `/organization/7%2E1` → ['organization', '7.1']. Returns undefined for a
 * malformed percent-encoding (refused with 400).
 */
export function segmentsOf(rest: string): string[] | undefined {
  const trimmed = rest.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return [];
  try {
    return trimmed.split('/').map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

/** Query parameters; the last value wins. `fromEntries` defines own properties, so `__proto__` is a plain key. */
export function paramsOf(query: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(query));
}

/** true when the request's Origin may open a socket. No Origin (not a browser) is allowed. */
export function originAllowed(request: IncomingMessage, allowed: string[] | undefined): boolean {
  if (!allowed) return true;
  const header = request.headers.origin ?? request.headers['sec-websocket-origin'];
  const origin = Array.isArray(header) ? header[0] : header;
  if (origin === undefined) return true;
  const wanted = origin.toLowerCase();
  return allowed.some((o) => o === '*' || o.toLowerCase() === wanted);
}

function refuse(status: RefusalStatus, reason: string): Admission {
  return { ok: false, status, reason };
}

/**
 * Runs the origin check, the authenticator and the scope. An authenticator or
 * scope that throws is reported and refused with 500; it never escapes.
 */
export async function admit(atr: Atr, context: RequestContext): Promise<Admission> {
  const { options } = atr;
  if (!originAllowed(context.request, options.allowedOrigins)) return refuse(403, 'origin not allowed');

  let authenticator: RequestAuthenticator;
  try {
    authenticator = new options.authenticateWith(context);
    if (!(await authenticator.matches())) return refuse(401, 'not authenticated');
  } catch (err) {
    atr.reportError(
      new AtrError(codes.SERVER_AUTHENTICATOR, `The authenticator threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }),
      { where: 'authenticator', path: context.segments.join('/') },
    );
    return refuse(500, 'authenticator failed');
  }

  let scopes: string[];
  try {
    const scope = new options.scopeWith(context, authenticator);
    const keys = await scope.routingKey();
    const list = typeof keys === 'string' ? [keys] : keys;
    if (!Array.isArray(list) || list.length === 0) return refuse(403, 'no scope');
    for (const key of list) {
      // A malformed scope (a raw value with a dot or `*` in it) never widens
      // a subscription: it is refused. Build scopes with scopeKey().
      if (scopeProblem(key) !== undefined) return refuse(403, 'malformed scope');
    }
    scopes = [...new Set(list)];
    if (!(await scope.valid())) return refuse(403, 'scope not allowed');
  } catch (err) {
    atr.reportError(
      new AtrError(codes.SERVER_SCOPE, `The scope threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }),
      { where: 'scope', path: context.segments.join('/') },
    );
    return refuse(500, 'scope failed');
  }
  return { ok: true, scopes, user: authenticator.user, resume: resumeOf(context.params[RESUME_PARAM], scopes) };
}
