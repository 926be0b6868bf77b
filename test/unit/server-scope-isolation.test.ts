import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fc from 'fast-check';
import { channelOf, decodeScopeValue, encodeScopeValue, scopeKey, scopeProblem } from '../../src/routing';
import { RequestScope } from '../../src/server/request-scope';
import { RequestAuthenticator } from '../../src/server/request-authenticator';
import { segmentsOf } from '../../src/server/admission';

/** Redis glob matching (PSUBSCRIBE, KEYS): `*`, `?`, `[...]` with ranges and `^`, `\` escapes. */
function globMatch(pattern: string, text: string): boolean {
  const p = [...pattern];
  const s = [...text];
  const memo = new Map<string, boolean>();
  const go = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    if (i === p.length) result = j === s.length;
    else if (p[i] === '*') result = go(i + 1, j) || (j < s.length && go(i, j + 1));
    else if (j === s.length) result = false;
    else if (p[i] === '?') result = go(i + 1, j + 1);
    else if (p[i] === '[') {
      let k = i + 1;
      const negate = p[k] === '^';
      if (negate) k++;
      let matched = false;
      while (k < p.length && p[k] !== ']') {
        if (p[k] === '\\' && k + 1 < p.length) k++;
        if (p[k + 1] === '-' && k + 2 < p.length && p[k + 2] !== ']') {
          if (s[j]! >= p[k]! && s[j]! <= p[k + 2]!) matched = true;
          k += 3;
        } else {
          if (p[k] === s[j]) matched = true;
          k++;
        }
      }
      result = (negate ? !matched : matched) && go(k + 1, j + 1);
    } else if (p[i] === '\\' && i + 1 < p.length) result = p[i + 1] === s[j] && go(i + 2, j + 1);
    else result = p[i] === s[j] && go(i + 1, j + 1);
    memo.set(key, result);
    return result;
  };
  return go(0, 0);
}

/** Strings made of the characters that have a meaning somewhere: separators, globs, escapes, unicode. */
const nasty = fc.string({
  unit: fc.constantFrom('.', '*', '?', '[', ']', '^', '-', ':', ' ', '%', '{', '}', '\\', '/', '7', '8', 'a', 'é', '💥', '\u0000'),
  maxLength: 12,
});
/** Any unicode text. */
const anyText = fc.string({ unit: 'grapheme', maxLength: 40 });
/** Any sequence of UTF-16 code units: lone surrogates too (a JS string from a database may hold one). */
const codeUnits = fc.string({ unit: 'binary', maxLength: 12 });
const loneSurrogates = fc.string({ unit: fc.constantFrom('\uD800', '\uDBFF', '\uDC00', '\uDFFF', '\uFFFD', 'x'), maxLength: 4 });
const value = fc.oneof(nasty, anyText, codeUnits, loneSurrogates, fc.integer().map(String));

describe('scope isolation (property)', () => {
  it('never gives two different values the same scope, nor a channel that pattern-matches the other', () => {
    fc.assert(
      fc.property(value, value, (a, b) => {
        fc.pre(a !== b);
        const sa = scopeKey('organization', a);
        const sb = scopeKey('organization', b);
        assert.notEqual(sa, sb);
        const ca = channelOf('atr:', sa);
        const cb = channelOf('atr:', sb);
        assert.notEqual(ca, cb);
        // Used as a pattern (a broker that pattern-subscribes), neither reaches the other.
        assert.equal(globMatch(ca, cb), false);
        assert.equal(globMatch(cb, ca), false);
      }),
      { numRuns: 3000 },
    );
  });

  it('gives every value a well-formed scope with no pattern character and exactly one name.value pair', () => {
    fc.assert(
      fc.property(value, (v) => {
        const scope = scopeKey('organization', v);
        assert.equal(scopeProblem(scope), undefined);
        assert.equal(scope.split('.').length, 2);
        assert.doesNotMatch(channelOf('atr:', scope), /[*?[\]\\\s]/);
      }),
      { numRuns: 3000 },
    );
  });

  it('decodes every encoded value back to itself', () => {
    fc.assert(
      fc.property(value, (v) => {
        assert.equal(decodeScopeValue(encodeScopeValue(v)), v);
      }),
      { numRuns: 3000 },
    );
  });

  it('never lets one scope be a prefix that a longer scope extends (7 vs 70 vs 7.post)', () => {
    fc.assert(
      fc.property(value, value, (a, b) => {
        fc.pre(a !== b);
        const sa = scopeKey('organization', a);
        const sb = scopeKey('organization', b);
        assert.equal(sb.startsWith(`${sa}.`), false);
      }),
      { numRuns: 2000 },
    );
  });

  it('turns any path segment into the exact scope of that value through the default RequestScope', () => {
    fc.assert(
      fc.property(value, (v) => {
        // A URL cannot carry a lone surrogate (the client cannot encode it).
        fc.pre(v !== '' && !v.includes('/') && !/[\uD800-\uDFFF]/.test(v.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')));
        const segments = segmentsOf(`/organization/${encodeURIComponent(v)}`);
        assert.deepEqual(segments, ['organization', v]);
        const request = new http.IncomingMessage(null as any);
        const context = { request, params: {}, segments: segments! };
        const scope = new RequestScope(context, new RequestAuthenticator(context));
        assert.equal(scope.routingKey(), scopeKey('organization', v));
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps 10 kB values apart', () => {
    const base = 'x'.repeat(10_000);
    const scopes = new Set([base, `${base}.`, `${base}*`, `${base}y`, `7${base}`].map((v) => scopeKey('organization', v)));
    assert.equal(scopes.size, 5);
    for (const s of scopes) assert.equal(scopeProblem(s), undefined);
  });
});
