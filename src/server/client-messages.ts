/**
 * What a client may send: small JSON objects with a `type`. One handler per
 * type, in a table, so that later messages (`resume`) are one entry more.
 */
import { codes } from '../errors';
import type { Reactor } from './reactor';

export interface ClientMessage {
  type: string;
  [key: string]: unknown;
}

export type ClientMessageHandler = (reactor: Reactor, message: ClientMessage) => void | Promise<void>;

export const PONG = '{"name":"atr.pong"}';

/** @internal The handlers by message type. */
export const clientMessageHandlers = new Map<string, ClientMessageHandler>([
  ['ping', (reactor) => { reactor.send(PONG); }],
]);

/** The `atr.error` message for a client that sent something wrong. */
export function clientError(message: string, code: string = codes.CLIENT_MESSAGE): string {
  return JSON.stringify({ name: 'atr.error', code, message });
}

/** Parses a client frame; returns the message or why it is not one. */
export function parseClientMessage(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): ClientMessage | string {
  if (isBinary) return 'binary frames are not accepted; send JSON text';
  const text = Array.isArray(data)
    ? Buffer.concat(data).toString('utf8')
    : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'a message must be a JSON object such as {"type":"ping"}';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || typeof (value as { type?: unknown }).type !== 'string') {
    return 'a message must be a JSON object with a string "type"';
  }
  return value as ClientMessage;
}
