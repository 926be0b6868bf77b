/**
 * Resume without a gap or a duplicate. A reactor that resumes a scope joins
 * the channel first (live messages start to arrive), then reads the history
 * after the client's id. Live messages are held while the history is sent;
 * then only those newer than the last replayed one go out, and the scope is
 * live. Ids of one scope sort in publish order, so "newer" is a comparison.
 */
import type { Broker } from '../brokers/broker';
import { compareEventIds } from '../event';

const ID_PREFIX = '{"id":"';

/** The id of a broker message (composeMessage puts it first), or undefined. */
export function messageId(message: string): string | undefined {
  if (!message.startsWith(ID_PREFIX)) return undefined;
  const end = message.indexOf('"', ID_PREFIX.length);
  return end < 0 ? undefined : message.slice(ID_PREFIX.length, end);
}

export type ReplayOutcome =
  | { kind: 'replayed'; count: number; lastId: string }
  | { kind: 'reset'; position: string };

/**
 * One scope of one connection: holds live messages while its history is
 * replayed. After the replay it keeps dropping live copies of what was
 * replayed: the history is read on one broker connection and live messages
 * come on another, so a live message the history already had may still be
 * on its way when the gate opens. Live messages of a scope arrive in publish
 * order, so the first one newer than the replay ends the filtering.
 */
export class ReplayGate {
  private held: string[] | undefined = [];
  private heldBytes = 0;
  /** After the replay: live messages at or before this id are copies of replayed ones. */
  private floor: string | undefined;

  constructor(
    private readonly send: (message: string) => void,
    /** Called when the held messages exceed `maxHeldBytes` (the client is too far behind to catch up). */
    private readonly overflow: () => void,
    private readonly maxHeldBytes: number,
  ) {}

  /** true while the history is being sent. */
  get replaying(): boolean {
    return this.held !== undefined;
  }

  /** true once replayed and a newer live message went out: the gate has nothing left to do. */
  get done(): boolean {
    return this.held === undefined && this.floor === undefined;
  }

  /** A live message of the scope: sent now, or held until the replay is done. */
  deliver(message: string): void {
    if (this.held === undefined) {
      if (this.floor !== undefined) {
        const id = messageId(message);
        if (id !== undefined && compareEventIds(id, this.floor) <= 0) return;
        this.floor = undefined;
      }
      this.send(message);
      return;
    }
    this.held.push(message);
    this.heldBytes += message.length;
    if (this.heldBytes > this.maxHeldBytes) {
      this.held = undefined;
      this.overflow();
    }
  }

  /**
   * Sends the history after `afterId` in pages, then the held live messages
   * newer than what was sent, then opens the gate. When the history no longer
   * reaches back to `afterId`, sends nothing of it and reports a reset.
   */
  async replay(broker: Broker, channel: string, afterId: string, pageSize = 500): Promise<ReplayOutcome> {
    let lastId = afterId;
    let count = 0;
    for (;;) {
      const page = await broker.history(channel, lastId, pageSize);
      if (!page.complete && count === 0) {
        const position = await broker.position(channel);
        this.open(position);
        return { kind: 'reset', position };
      }
      if (this.held === undefined) return { kind: 'replayed', count, lastId };  // overflowed meanwhile
      for (const message of page.messages) this.send(message);
      count += page.messages.length;
      if (page.messages.length > 0) lastId = page.lastId;
      if (page.messages.length < pageSize) break;
    }
    this.open(lastId);
    return { kind: 'replayed', count, lastId };
  }

  /** Sends the held messages newer than `lastId` and goes live, still dropping copies up to `lastId`. */
  open(lastId: string): void {
    const held = this.held;
    this.held = undefined;
    if (!held) return;
    this.floor = lastId;
    for (const message of held) this.deliver(message);
  }
}
