/**
 * Signed session tokens: `<userId>.<expires>.<signature>`, the signature an
 * HMAC-SHA256 of `<userId>.<expires>` under the app's secret (base64url).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOKEN_LIFETIME_SECONDS = 12 * 60 * 60;

/** The secret from `ATR_EXAMPLE_SECRET`, or a random one per process (tokens then die with the process). */
export function secretFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.ATR_EXAMPLE_SECRET || randomBytes(32).toString('base64url');
}

function sign(payload: string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

export function issueToken(userId: number, secret: string, now = Date.now(), lifetime = TOKEN_LIFETIME_SECONDS): string {
  const payload = `${userId}.${Math.floor(now / 1000) + lifetime}`;
  return `${payload}.${sign(payload, secret)}`;
}

/** The user id of a valid, unexpired token; undefined otherwise. */
export function verifyToken(token: unknown, secret: string, now = Date.now()): number | undefined {
  if (typeof token !== 'string' || token.length > 200) return undefined;
  const m = /^(\d{1,12})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return undefined;
  const expected = Buffer.from(sign(`${m[1]}.${m[2]}`, secret));
  const given = Buffer.from(m[3]!);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
  if (Number(m[2]) * 1000 <= now) return undefined;
  return Number(m[1]);
}

/** The token of `Authorization: Bearer <token>`. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const m = /^Bearer\s+(\S+)$/i.exec(value ?? '');
  return m?.[1];
}
