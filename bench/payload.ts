/**
 * The one payload every target carries: about 300 bytes of JSON that look
 * like a model update, with the publish time (`"t"`, monotonic microseconds,
 * the same clock in every process on the machine) first, for latency.
 */

const BODY = 'Quarterly numbers are in: revenue up, churn down, the new onboarding flow ships on Monday.';

export function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export function payload(seq: number, scope: number): Record<string, unknown> {
  return {
    t: nowMicros(),
    seq,
    id: 100_000 + (seq % 50_000),
    organization_id: scope,
    title: 'Board meeting notes',
    body: BODY,
    status: 'published',
    author: { id: 42, name: 'Alice Example' },
    tags: ['finance', 'q3'],
    updated_at: '2026-12-03T10:00:00.000Z',
  };
}

/** Bytes of the payload as JSON (what "about 300 bytes" refers to). */
export function payloadBytes(): number {
  return Buffer.byteLength(JSON.stringify(payload(1, 1)));
}
