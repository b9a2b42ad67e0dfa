/**
 * @module
 * One writer's changes that write the same dependent, one after another: many children of one
 * parent ending at once each write the parent (its pending count), and changes built on the
 * same stored version of it would all conflict but one, round after round. Each waits for the
 * writer's previous change on that dependent to be decided, then reads it afresh.
 */

/** Queues of a writer's changes by the dependents they write. */
export class DependentQueue {
  /** Per dependent, the change of this writer last in line for it. */
  #tails = new Map<string, Promise<void>>();

  /** Runs `write` once every change queued before it on one of `ids` is decided. */
  async run<T>(ids: readonly string[], write: () => Promise<T>): Promise<T> {
    if (ids.length === 0) return await write();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => done = resolve);
    const before = ids.flatMap((id) => this.#tails.get(id) ?? []);
    for (const id of ids) this.#tails.set(id, mine);
    try {
      await Promise.all(before);
      return await write();
    } finally {
      done();
      for (const id of ids) if (this.#tails.get(id) === mine) this.#tails.delete(id);
    }
  }
}
