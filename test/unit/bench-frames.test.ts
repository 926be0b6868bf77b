import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ws from 'ws';
import { FrameParser, OPCODE_PING, OPCODE_TEXT, clientFrame, readTimestamp } from '../../bench/frames';

/** ws's frame builder (exported by ws, missing from its types). */
const { Sender } = ws as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } };

/** A server frame as ws builds it. */
function serverFrame(text: string, opcode = OPCODE_TEXT): Buffer {
  const parts = Sender.frame(Buffer.from(text), { fin: true, opcode, mask: false, readOnly: false, rsv1: false });
  return Buffer.concat(parts);
}

function parse(chunks: Buffer[], wantPayload = true) {
  const frames: Array<{ opcode: number; length: number; text?: string }> = [];
  const parser = new FrameParser({ onFrame: (opcode, length, payload) => frames.push({ opcode, length, text: payload?.toString() }) }, wantPayload);
  for (const chunk of chunks) parser.push(chunk);
  return frames;
}

describe('bench frame parser', () => {
  const messages = ['{"t":123,"a":1}', 'x'.repeat(125), 'y'.repeat(126), 'z'.repeat(70_000), '{"name":"ünïcødé ✓"}'];
  const stream = Buffer.concat([...messages.map((m) => serverFrame(m)), serverFrame('hi', OPCODE_PING)]);

  it('reads 7-bit, 16-bit and 64-bit lengths and control frames from one chunk', () => {
    const frames = parse([stream]);
    assert.deepEqual(frames.map((f) => f.text), [...messages, 'hi']);
    assert.deepEqual(frames.map((f) => f.opcode), [1, 1, 1, 1, 1, OPCODE_PING]);
  });

  it('reads the same frames whatever byte the stream is split at', () => {
    for (let at = 1; at < 140; at++) {
      const frames = parse([stream.subarray(0, at), stream.subarray(at)]);
      assert.deepEqual(frames.map((f) => f.text), [...messages, 'hi'], `split at ${at}`);
    }
    const bytewise = parse(Array.from({ length: 400 }, (_, i) => stream.subarray(i, i + 1)).concat([stream.subarray(400)]));
    assert.deepEqual(bytewise.map((f) => f.text), [...messages, 'hi']);
  });

  it('keeps a payload split across chunks even when the caller reuses the chunk memory', () => {
    const frame = serverFrame('{"t":42,"payload":"abcdef"}');
    const reused = Buffer.alloc(frame.length);
    const frames: string[] = [];
    const parser = new FrameParser({ onFrame: (_o, _l, payload) => frames.push(String(payload)) }, true);
    frame.copy(reused, 0, 0, 10);
    parser.push(reused.subarray(0, 10));
    reused.fill(0);
    frame.copy(reused, 0, 10);
    parser.push(reused.subarray(0, frame.length - 10));
    assert.deepEqual(frames, ['{"t":42,"payload":"abcdef"}']);
  });

  it('skips long text payloads unless asked, but always reads short and control frames', () => {
    const frames = parse([stream], false);
    assert.equal(frames.length, 6);
    assert.equal(frames[0].text, messages[0]); // short: protocol chatter is read
    assert.equal(frames[3].text, undefined);
    assert.equal(frames[3].length, 70_000);
    assert.equal(frames[5].text, 'hi');
  });

  it('builds masked client frames that ws accepts as they are (mask 0000)', () => {
    const frame = clientFrame(OPCODE_TEXT, '40');
    assert.deepEqual([...frame], [0x81, 0x82, 0, 0, 0, 0, 0x34, 0x30]);
  });

  it('reads the publish timestamp from a payload', () => {
    assert.equal(readTimestamp(Buffer.from('{"id":"1-0","data":{"t":1234567,"seq":1}}')), 1234567);
    assert.equal(readTimestamp(Buffer.from('{"seq":1}')), -1);
  });
});
