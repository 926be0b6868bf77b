/**
 * A small event emitter that runs in browsers and Node alike. Unlike Node's
 * EventEmitter, an 'error' with no listener is not thrown: a client that
 * nobody watches must not crash the page.
 */
export type Listener = (...args: any[]) => void;

export class TinyEmitter {
  private readonly listeners = new Map<string, Listener[]>();

  /** Adds a listener; returns a function that removes it. */
  on(name: string, listener: Listener): () => void {
    const list = this.listeners.get(name) ?? [];
    list.push(listener);
    this.listeners.set(name, list);
    return () => this.off(name, listener);
  }

  /** Adds a listener that runs once. */
  once(name: string, listener: Listener): () => void {
    const off = this.on(name, (...args: unknown[]) => {
      off();
      listener(...args);
    });
    return off;
  }

  off(name: string, listener: Listener): void {
    const list = this.listeners.get(name);
    if (!list) return;
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.listeners.delete(name);
  }

  listenerCount(name: string): number {
    return this.listeners.get(name)?.length ?? 0;
  }

  protected emit(name: string, ...args: unknown[]): void {
    const list = this.listeners.get(name);
    if (!list) return;
    for (const listener of [...list]) {
      try {
        listener(...args);
      } catch (err) {
        // One broken handler must not stop the others, nor the client.
        if (name !== 'error') this.emit('error', err);
      }
    }
  }
}
