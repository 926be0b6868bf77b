import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  channelOf, decodeScopeValue, encodeScopeValue, eventNameProblem, resourceKeyOf, routingKeyOf,
  scopeKey, scopeKeyOf, scopeOfChannel, scopeOfRow, scopeProblem,
} from '../../src/routing';
import { AtrError } from '../../src/errors';

describe('routing', () => {
  it('turns class names into snake-case resource keys', () => {
    assert.equal(resourceKeyOf('Post'), 'post');
    assert.equal(resourceKeyOf('BlogPost'), 'blog_post');
    assert.equal(resourceKeyOf('HTTPRequest'), 'http_request');
    assert.equal(resourceKeyOf('Post2Comment'), 'post2_comment');
  });

  it('drops _id from scope columns and keeps other names', () => {
    assert.equal(scopeKeyOf('organization_id'), 'organization');
    assert.equal(scopeKeyOf('team'), 'team');
    assert.equal(scopeKeyOf('_id'), '_id');
  });

  it('chains several scope columns in order', () => {
    assert.equal(scopeOfRow(['organization_id', 'user_id'], { organization_id: 7, user_id: 3 }), 'organization.7.user.3');
    assert.equal(scopeOfRow([], { id: 1 }), '');
  });

  it('refuses a row whose scope column is missing instead of publishing to organization.undefined', () => {
    assert.throws(() => scopeOfRow(['organization_id'], { id: 1 }), (err: AtrError) => err.code === 'ATR_ERR_EVENT_SCOPE_MISSING');
    assert.throws(() => scopeOfRow(['organization_id'], { organization_id: null }), /no value for the scope column "organization_id"/);
  });

  it('encodes every character that could join or widen a scope', () => {
    assert.equal(encodeScopeValue('7.post'), '7%2Epost');
    assert.equal(encodeScopeValue('7*'), '7%2A');
    assert.equal(encodeScopeValue('[78]'), '%5B78%5D');
    assert.equal(encodeScopeValue('7:8'), '7%3A8');
    assert.equal(encodeScopeValue('a b'), 'a%20b');
    assert.equal(encodeScopeValue('é'), '%C3%A9');
    assert.equal(encodeScopeValue(9007199254740993n), '9007199254740993');
    assert.equal(encodeScopeValue(''), '%');
  });

  it('decodes what it encodes', () => {
    for (const value of ['7', '7.post', '{x}', 'ü日本', '', '%41', '100%']) {
      assert.equal(decodeScopeValue(encodeScopeValue(value)), value);
    }
  });

  it('builds scopes from pairs and rejects odd arguments and bad names', () => {
    assert.equal(scopeKey('organization', 7), 'organization.7');
    assert.equal(scopeKey('organization', 7, 'user', '3'), 'organization.7.user.3');
    assert.throws(() => scopeKey('organization'), /pairs/);
    assert.throws(() => scopeKey('org.x', 7), /may only hold letters, digits/);
  });

  it('appends the event name to the scope, and nothing to the root scope', () => {
    assert.equal(routingKeyOf('organization.7', 'post.created'), 'organization.7.post.created');
    assert.equal(routingKeyOf('', 'post.created'), 'post.created');
  });

  it('accepts encoded scopes and refuses raw values that are not', () => {
    assert.equal(scopeProblem(''), undefined);
    assert.equal(scopeProblem('organization.7'), undefined);
    assert.equal(scopeProblem(scopeKey('organization', '7*')), undefined);
    assert.match(scopeProblem('organization.7.post')!, /not pairs/);
    assert.match(scopeProblem('organization.7*')!, /not an encoded scope value/);
    assert.match(scopeProblem('organization.[78]')!, /not an encoded scope value/);
    assert.match(scopeProblem('organization.7:8')!, /not an encoded scope value/);
    assert.match(scopeProblem(42)!, /must be a string/);
  });

  it('reserves atr. event names for the library', () => {
    assert.equal(eventNameProblem('invoice.paid'), undefined);
    assert.match(eventNameProblem('atr.ready')!, /reserved/);
    assert.match(eventNameProblem('bad name')!, /words of letters/);
    assert.match(eventNameProblem('')!, /words of letters/);
  });

  it('puts the scope in a hash tag and reads it back', () => {
    assert.equal(channelOf('atr:', 'organization.7'), 'atr:{organization.7}');
    assert.equal(scopeOfChannel('atr:', 'atr:{organization.7}'), 'organization.7');
    assert.equal(scopeOfChannel('atr:', 'other:{organization.7}'), undefined);
  });
});
