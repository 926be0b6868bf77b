/** Sizes of a run: `--tiny` (the test), `--quick` (under two minutes), or the full run. */
export interface Mode {
  name: 'tiny' | 'quick' | 'full';
  /** Client counts of the one-scope fan-out and latency runs. */
  clients: number[];
  /** Clients spread over several scopes... */
  scopeClients: number;
  /** ...over these many scopes. */
  scopes: number[];
  memoryClients: number;
  warmupMs: number;
  durationMs: number;
  /** Messages published and not yet delivered, at most (closed loop). */
  window: number;
  /**
   * Deliveries a second of the latency runs (messages a second = this /
   * clients, at most 100), well below what any target saturates at, and for how long.
   */
  latencyDeliveries: number;
  latencyMs: number;
  /** Rows per insert run. */
  insertRows: number;
}

export const MODES: Record<Mode['name'], Mode> = {
  tiny: {
    name: 'tiny',
    clients: [10, 20],
    scopeClients: 20,
    scopes: [1, 4],
    memoryClients: 20,
    warmupMs: 100,
    durationMs: 300,
    window: 8,
    latencyDeliveries: 1000,
    latencyMs: 300,
    insertRows: 30,
  },
  quick: {
    name: 'quick',
    clients: [1000, 5000],
    scopeClients: 5000,
    scopes: [100, 1000],
    memoryClients: 2000,
    warmupMs: 400,
    durationMs: 1500,
    window: 32,
    latencyDeliveries: 25000,
    latencyMs: 1500,
    insertRows: 600,
  },
  full: {
    name: 'full',
    clients: [1000, 5000, 10000],
    scopeClients: 10000,
    scopes: [1, 100, 1000],
    memoryClients: 10000,
    warmupMs: 1000,
    durationMs: 5000,
    window: 32,
    latencyDeliveries: 25000,
    latencyMs: 5000,
    insertRows: 3000,
  },
};
