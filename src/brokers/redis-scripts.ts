/**
 * The Lua side of the Redis brokers. One script publishes: it appends the
 * body to the scope's history stream, trims the stream by count and by age,
 * turns the stream id into our event id and publishes the composed message,
 * all atomically, so the id order, the history order and the delivery order
 * of a scope are the same. Another reads the history with the marker that
 * says how far it was trimmed.
 */
import { createHash } from 'node:crypto';
import { parseEventId } from '../event';

// Trimming is exact and records the newest entry it removed in a marker key
// (max-deleted-entry-id only follows XDEL, and MAXLEN ~ would not say what it
// removed): a reader at or past the marker missed nothing.
const TRIM = `
local function trim(key, marker, maxLength, minid)
  local newest = nil
  local drop = redis.call('XLEN', key) - maxLength
  if drop > 0 then
    local gone = redis.call('XRANGE', key, '-', '+', 'COUNT', drop)
    newest = gone[#gone][1]
    redis.call('XTRIM', key, 'MAXLEN', maxLength)
  end
  if minid > 0 then
    -- The oldest entries come first: look at them from the head, up to the
    -- bound (asking XREVRANGE from the bound down on every publish cost 150 us
    -- on a full history). Past a few pages of aged entries (a quiet scope with
    -- a long history), XREVRANGE finds the newest of them at once. The bound
    -- is exclusive and <ms>-0, exactly what XTRIM MINID removes.
    local min = string.format('%.0f', minid) .. '-0'
    local aged = nil
    local page = redis.call('XRANGE', key, '-', '(' .. min, 'COUNT', 64)
    local pages = 1
    while #page == 64 and pages < 4 do
      aged = page[64][1]
      page = redis.call('XRANGE', key, '(' .. aged, '(' .. min, 'COUNT', 64)
      pages = pages + 1
    end
    if #page == 64 then
      aged = redis.call('XREVRANGE', key, '(' .. min, '-', 'COUNT', 1)[1][1]
    elseif #page > 0 then
      aged = page[#page][1]
    end
    if aged then
      newest = aged
      redis.call('XTRIM', key, 'MINID', min)
    end
  end
  if newest then redis.call('SET', marker, newest) end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// Appends one body to a history stream, trims it, publishes the composed
// message on the channel and returns the event id.
const PUBLISH_ONE = `
local function publish(history, marker, channel, body, maxLength, maxAge, command)
  local sid = redis.call('XADD', history, '*', 'b', body)
  trim(history, marker, maxLength, now - maxAge)
  -- A scope that goes quiet frees its keys once its events are long past their age.
  local ttl = string.format('%.0f', 2 * maxAge + 3600000)
  redis.call('PEXPIRE', history, ttl)
  redis.call('PEXPIRE', marker, ttl)
  local dash = string.find(sid, '-', 1, true)
  local id = string.sub(sid, 1, dash - 1) .. '-' .. string.format('%06d', tonumber(string.sub(sid, dash + 1)))
  local message
  if body == '{}' then message = '{"id":"' .. id .. '"}'
  else message = '{"id":"' .. id .. '",' .. string.sub(body, 2) end
  redis.call(command, channel, message)
  return id
end
`;

// KEYS[1] history stream, KEYS[2] trim marker, KEYS[3] channel (all declared, one hash tag:
// a cluster routes them to one slot). ARGV[1] body, ARGV[2] max length, ARGV[3] max age ms,
// ARGV[4] PUBLISH or SPUBLISH.
export const PUBLISH_SCRIPT = TRIM + PUBLISH_ONE + `
return publish(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
`;

// Many events in one call (a single Redis; a cluster would need one slot). KEYS: history,
// marker, channel of each event in turn. ARGV[1] max length, ARGV[2] max age ms, ARGV[3]
// PUBLISH, ARGV[4..] the bodies. Returns one id per event, or '!' and the error of an event
// that failed: the events before it are published, so they must not be reported lost.
export const PUBLISH_MANY_SCRIPT = TRIM + PUBLISH_ONE + `
local maxLength, maxAge = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 4, #ARGV do
  local k = (i - 4) * 3
  local ok, id = pcall(publish, KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[i], maxLength, maxAge, ARGV[3])
  if ok then out[#out + 1] = id
  elseif type(id) == 'table' and id.err then out[#out + 1] = '!' .. id.err
  else out[#out + 1] = '!' .. tostring(id) end
end
return out
`;

// KEYS[1] history stream, KEYS[2] trim marker. ARGV[1] exclusive start stream id, ARGV[2]
// count, ARGV[3] max age ms. Returns { exists, trimmed through, last id, id1, body1, ... }.
export const HISTORY_SCRIPT = TRIM + `
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, '0-0', '0-0'} end
trim(KEYS[1], KEYS[2], math.huge, now - tonumber(ARGV[3]))
local last = '0-0'
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1] end
end
local out = {1, redis.call('GET', KEYS[2]) or '0-0', last}
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
for _, entry in ipairs(entries) do
  out[#out + 1] = entry[1]
  out[#out + 1] = entry[2][2]
end
return out
`;

export interface Script {
  source: string;
  sha1: string;
}

function script(source: string): Script {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

export const publishScript = script(PUBLISH_SCRIPT);
export const publishManyScript = script(PUBLISH_MANY_SCRIPT);
export const historyScript = script(HISTORY_SCRIPT);

/** `1764780000000-5` (a stream id) → `1764780000000-000005` (an event id). */
export function eventIdOfStreamId(streamId: string): string {
  const [ms, seq] = streamId.split('-');
  return `${ms}-${(seq ?? '0').padStart(6, '0')}`;
}

/** An event id (or a stream id) → the stream id; '0-0' for anything that is not an id. */
export function streamIdOfEventId(eventId: string): string {
  const parsed = parseEventId(eventId);
  return parsed ? `${parsed[0]}-${parsed[1]}` : '0-0';
}

/** The history stream of a channel: the same hash tag, so the same cluster slot. */
export function historyKeyOf(channel: string): string {
  return `${channel}:history`;
}

/** The id of the newest entry trimmed from a channel's history. */
export function trimMarkerKeyOf(channel: string): string {
  return `${channel}:trimmed`;
}
