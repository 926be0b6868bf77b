/**
 * Work that waits for the outermost transaction to commit.
 *
 * A knex transaction object (the "transactor" that Objection hands around as
 * `trx`) has `isTransaction`, `executionPromise` and, when it is a savepoint,
 * `parentTransaction`. Its `executionPromise` resolves both on commit and on a
 * plain `rollback()` (knex's default `doNotRejectOnRollback`), so it cannot
 * tell the two apart: we wrap the transactor's own `commit` and `rollback`,
 * which knex itself calls for the `transaction(async (trx) => ...)` form too,
 * and read the outcome from there.
 *
 * Callbacks are kept in one list on the outermost transaction, in the order
 * they were added (the order of the writes), each tagged with the savepoint it
 * came from; a rolled-back savepoint drops its own callbacks and those of the
 * savepoints inside it, the outer ones still run on commit.
 */

interface Transactor {
  isTransaction?: boolean;
  executionPromise?: Promise<unknown>;
  parentTransaction?: Transactor;
  commit: (value?: unknown) => unknown;
  rollback: (error?: unknown) => unknown;
  isCompleted?: () => boolean;
  raw: (sql: string) => PromiseLike<unknown>;
  on?: (event: string, listener: (err: { errno?: number; code?: string }) => void) => unknown;
  client?: { config?: { client?: unknown }; dialect?: string };
}

interface TxState {
  parent: TxState | undefined;
  root: TxState;
  rolledBack: boolean;
  commitCalled: boolean;
  /**
   * The database rolled the whole transaction back on its own: PostgreSQL
   * answers COMMIT after a failed statement with a silent ROLLBACK; MySQL and
   * MariaDB end the transaction on a deadlock and run what follows in
   * autocommit mode, so a later COMMIT "succeeds" too.
   */
  aborted: boolean;
  /** Only on the root: what runs after commit, in write order. */
  entries: Array<{ state: TxState; run: () => void; owner: object }>;
}

const states = new WeakMap<object, TxState>();
/** Callbacks waiting for a commit, per owner (an Atr), so tests can wait for quiet. */
const waiting = new Map<object, number>();
const NO_OWNER = {};

/** true when `knex` is a knex transaction (or savepoint) object. */
export function isTransaction(knex: unknown): boolean {
  return typeof knex === 'function' && (knex as unknown as Transactor).isTransaction === true;
}

/**
 * Runs `run` once the outermost transaction of `knex` commits, in commit
 * order; never when it (or a savepoint that holds the write) rolls back. A
 * plain knex instance (no transaction) runs it at once. `run` must not throw;
 * if it does the error goes to `onError`.
 */
export function afterCommit(knex: unknown, run: () => void, onError: (err: unknown) => void = () => {}, owner: object = NO_OWNER): void {
  const safe = () => {
    try {
      run();
    } catch (err) {
      onError(err);
    }
  };
  if (!isTransaction(knex)) {
    safe();
    return;
  }
  const trx = knex as unknown as Transactor;
  if (typeof trx.executionPromise?.then !== 'function') {
    // Not a transaction we can follow: publishing at once would announce work
    // that may still roll back, so say so.
    onError(new Error('atr cannot follow this transaction (no executionPromise); its events are dropped'));
    return;
  }
  const state = stateOf(trx);
  state.root.entries.push({ state, run: safe, owner });
  waiting.set(owner, (waiting.get(owner) ?? 0) + 1);
}

/** How many callbacks of `owner` (or of everybody) wait for a commit. */
export function waitingForCommit(owner?: object): number {
  if (owner) return waiting.get(owner) ?? 0;
  let total = 0;
  for (const n of waiting.values()) total += n;
  return total;
}

function stateOf(trx: Transactor): TxState {
  const known = states.get(trx);
  if (known) return known;
  const parent = isTransaction(trx.parentTransaction) ? stateOf(trx.parentTransaction!) : undefined;
  const state = {
    parent,
    rolledBack: false,
    commitCalled: false,
    aborted: false,
    entries: [],
  } as unknown as TxState;
  state.root = parent ? parent.root : state;
  states.set(trx, state);
  follow(trx, state);
  return state;
}

function follow(trx: Transactor, state: TxState): void {
  const commit = trx.commit;
  const rollback = trx.rollback;
  trx.rollback = function wrappedRollback(this: unknown, error?: unknown) {
    state.rolledBack = true;
    return rollback.call(this, error);
  };
  trx.commit = function wrappedCommit(this: unknown, value?: unknown) {
    state.commitCalled = true;
    if (state.root === state && state.entries.length > 0 && isPostgres(trx)) {
      // A statement failed earlier in this transaction: PostgreSQL will turn
      // COMMIT into ROLLBACK without an error. One cheap query tells.
      return Promise.resolve(trx.raw('select 1')).then(
        () => commit.call(this, value),
        () => {
          state.aborted = true;
          return commit.call(this, value);
        },
      );
    }
    return commit.call(this, value);
  };
  if (!state.parent && typeof trx.on === 'function' && isMysql(trx)) {
    trx.on('query-error', (err) => {
      if (err?.errno === 1213 || err?.code === 'ER_LOCK_DEADLOCK') state.aborted = true;
    });
  }
  trx.executionPromise!.then(
    () => settle(state, state.commitCalled && !state.rolledBack && !state.aborted),
    () => settle(state, false),
  );
}

function settle(state: TxState, committed: boolean): void {
  if (!committed) state.rolledBack = true;
  if (state.root !== state) return; // a savepoint: its entries wait for the root
  const entries = state.entries.splice(0);
  for (const { owner } of entries) {
    const left = (waiting.get(owner) ?? 1) - 1;
    if (left > 0) waiting.set(owner, left);
    else waiting.delete(owner);
  }
  if (!committed) return;
  for (const entry of entries) {
    if (!rolledBackChain(entry.state)) entry.run();
  }
}

function rolledBackChain(state: TxState | undefined): boolean {
  for (let s = state; s; s = s.parent) if (s.rolledBack) return true;
  return false;
}

function dialectOf(trx: Transactor): string {
  return String(trx.client?.dialect ?? trx.client?.config?.client ?? '');
}

function isPostgres(trx: Transactor): boolean {
  return /^(pg|postgres|postgresql|pgnative)$/i.test(dialectOf(trx));
}

function isMysql(trx: Transactor): boolean {
  return /^mysql2?$/i.test(dialectOf(trx));
}
