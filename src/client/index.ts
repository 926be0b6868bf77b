/**
 * The atr client for Node and bundlers: the same class as in the browser,
 * with `ws` as its default WebSocket so that a refused upgrade shows its HTTP
 * status (401/403) and headers can be sent.
 */
import WebSocket from 'ws';
import { AtrClient as BaseAtrClient } from './client';
import type { AtrClientOptions, WebSocketConstructor } from './client';

export interface NodeAtrClientOptions extends AtrClientOptions {
  /** Headers of the upgrade request (say `Authorization: Bearer …`); Node only. */
  headers?: Record<string, string>;
}

/**
 * A live connection to an atr endpoint from Node.
 *
 * @example
 * import { AtrClient } from 'atr/client';
 * const client = new AtrClient({ url: 'ws://127.0.0.1:3000/ws/organization/1', headers: { authorization: `Bearer ${token}` } });
 * client.on('*', (event) => console.log(event.name, event.record));
 */
export class AtrClient extends BaseAtrClient {
  static override defaultWebSocket: WebSocketConstructor | undefined = WebSocket as unknown as WebSocketConstructor;
  private readonly headers: Record<string, string> | undefined;

  constructor(options: NodeAtrClientOptions | string) {
    super(options);
    this.headers = typeof options === 'string' ? undefined : options.headers;
  }

  protected override socketOptions(): unknown {
    return this.headers ? { headers: this.headers } : undefined;
  }
}

export { backoffDelay, BACKOFF_DEFAULTS } from './backoff';
export type { BackoffOptions } from './backoff';
export { Positions, scopeOfEvent } from './positions';
export { NO_RECONNECT_CODES, NO_RECONNECT_STATUSES, SILENT_SERVER_CODE, RESUME_PARAM } from './client';
export type { AtrClientOptions, ClientState, CloseInfo, ReconnectInfo, WebSocketConstructor, WebSocketLike } from './client';
