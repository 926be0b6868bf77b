import type { IncomingMessage } from 'node:http';

/** What an authenticator and a scope see of the websocket request. */
export interface RequestContext {
  /** The upgrade request (headers, socket, url). */
  request: IncomingMessage;
  /** The query parameters (the last value wins when one repeats). */
  params: Record<string, string>;
  /** The path below the mount point, split on "/" and percent-decoded: `/ws/organization/7` → ['organization', '7']. */
  segments: string[];
}

/** Cookies of a request, parsed from its Cookie header. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (!name || name in out) continue;
    try {
      out[name] = decodeURIComponent(value);
    } catch {
      out[name] = value;
    }
  }
  return out;
}
