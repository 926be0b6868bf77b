/**
 * Resource keys, scope keys, routing keys and channel names.
 *
 * Scope values are percent-encoded so that only [A-Za-z0-9_-] stay as they
 * are: a value can then never contain the `.` that separates the parts of a
 * scope, nor anything a broker might read as a pattern (`*`, `?`, `[`, `{`).
 * Two different values always give two different scopes.
 */
import { AtrError, codes } from './errors';

const SAFE = /^[A-Za-z0-9_-]$/;
const KEY_RE = /^[A-Za-z0-9_-]+$/;
const VALUE_RE = /^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+$/;

/** `Post` → `post`, `BlogPost` → `blog_post`, `HTTPRequest` → `http_request`. */
export function resourceKeyOf(className: string): string {
  return className
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]+/g, '_')
    .toLowerCase();
}

/** `organization_id` → `organization`; a column without `_id` keeps its name. */
export function scopeKeyOf(column: string): string {
  return column.endsWith('_id') && column.length > 3 ? column.slice(0, -3) : column;
}

/** Encodes one scope value (string, number or bigint) so it is a single safe segment. */
export function encodeScopeValue(value: unknown): string {
  if (value === null || value === undefined) {
    throw new AtrError(codes.EVENT_SCOPE_MISSING, `A scope value is ${value === null ? 'null' : 'undefined'}`);
  }
  const text = typeof value === 'string' ? value : String(value);
  if (text === '') return '%';  // distinct from every encoded non-empty value, refused by nothing
  if (KEY_RE.test(text)) return text; // nothing to encode: ids, slugs
  let out = '';
  for (const ch of text) {
    if (SAFE.test(ch)) out += ch;
    else for (const byte of utf8Bytes(ch)) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * UTF-8 bytes of one code point. A lone surrogate (possible in a JS string)
 * gets its own three bytes (as in WTF-8) rather than the replacement
 * character's, so that no two different values share an encoding.
 */
function utf8Bytes(ch: string): Uint8Array {
  const code = ch.charCodeAt(0);
  if (ch.length === 1 && code >= 0xd800 && code <= 0xdfff) {
    return Uint8Array.of(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
  }
  return Buffer.from(ch, 'utf8');
}

/** The inverse of `encodeScopeValue`. */
export function decodeScopeValue(segment: string): string {
  if (segment === '%') return '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return decodeWtf8(segment);
  }
}

/** Decodes percent-encoded bytes that may hold lone surrogates (see utf8Bytes). */
function decodeWtf8(segment: string): string {
  const bytes = Buffer.from(segment.replace(/%([0-9A-F]{2})|([^%])/gi, (_m, hex: string | undefined, ch: string | undefined) =>
    hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : ch!), 'latin1');
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]!;
    const n = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
    let code = n === 1 ? b : b & (0xff >> (n + 1));
    for (let k = 1; k < n; k++) code = (code << 6) | (bytes[i + k]! & 0x3f);
    out += String.fromCodePoint(code);
    i += n;
  }
  return out;
}

/** `scopeKey('organization', 7)` → `organization.7`; pairs chain: `scopeKey('organization', 7, 'user', 3)`. */
export function scopeKey(...pairs: unknown[]): string {
  if (pairs.length % 2 !== 0) {
    throw new TypeError('scopeKey() takes pairs of (name, value)');
  }
  const parts: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    const name = String(pairs[i]);
    if (!KEY_RE.test(name)) throw new TypeError(`scopeKey(): the name "${name}" may only hold letters, digits, "_" and "-"`);
    parts.push(name, encodeScopeValue(pairs[i + 1]));
  }
  return parts.join('.');
}

/** The scope of a row, from the columns of `publicationScope`: `organization.7`. '' when unscoped. */
export function scopeOfRow(columns: readonly string[], row: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const column of columns) {
    const value = row[column];
    if (value === null || value === undefined) {
      throw new AtrError(codes.EVENT_SCOPE_MISSING, `The row has no value for the scope column "${column}"`);
    }
    parts.push(scopeKeyOf(column), encodeScopeValue(value));
  }
  return parts.join('.');
}

/** `organization.7` + `post.created` → `organization.7.post.created`; the root scope adds nothing. */
export function routingKeyOf(scope: string, eventName: string): string {
  return scope === '' ? eventName : `${scope}.${eventName}`;
}

/**
 * Why a scope is not well formed, or undefined when it is. A scope is '' (the
 * root) or pairs `name.value` joined by dots, each value encoded.
 */
export function scopeProblem(scope: unknown): string | undefined {
  if (typeof scope !== 'string') return 'a scope must be a string';
  if (scope === '') return undefined;
  if (scope.length > 16384) return 'a scope may be at most 16384 characters long';
  const parts = scope.split('.');
  if (parts.length % 2 !== 0) return `"${shorten(scope)}" is not pairs of name.value`;
  for (let i = 0; i < parts.length; i += 2) {
    if (!KEY_RE.test(parts[i]!)) return `"${shorten(parts[i]!)}" is not a valid scope name`;
    const value = parts[i + 1]!;
    if (value !== '%' && !VALUE_RE.test(value)) return `"${shorten(value)}" is not an encoded scope value (use scopeKey())`;
  }
  return undefined;
}

export function assertScope(scope: unknown): asserts scope is string {
  const problem = scopeProblem(scope);
  if (problem) throw new AtrError(codes.EVENT_SCOPE, `Invalid scope: ${problem}`);
}

const NAME_RE = /^[a-z0-9_]+(?:\.[a-z0-9_]+)*$/i;

/** Why an event name is not valid, or undefined. Names starting with `atr.` are the library's own. */
export function eventNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    return 'an event name is words of letters, digits and "_" joined by dots, such as "invoice.paid"';
  }
  if (name === 'atr' || name.startsWith('atr.')) return 'event names starting with "atr." are reserved for atr itself';
  return undefined;
}

/**
 * The broker channel of a scope. The scope sits in a Redis hash tag so that a
 * scope's channel and its history stream live on the same cluster slot.
 */
export function channelOf(prefix: string, scope: string): string {
  return `${prefix}{${scope}}`;
}

/** The scope of a channel made by `channelOf`, or undefined if it is not one. */
export function scopeOfChannel(prefix: string, channel: string): string | undefined {
  if (!channel.startsWith(prefix + '{') || !channel.endsWith('}')) return undefined;
  return channel.slice(prefix.length + 1, -1);
}

function shorten(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
