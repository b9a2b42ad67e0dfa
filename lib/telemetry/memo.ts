/**
 * @module
 * A small memo for values made per job name or queue: spans and metrics reuse one object per
 * name instead of building one per attempt.
 */

/** Values of `make` by key; past `max` keys (more than a worker's names) it starts again. */
export class Memo<K, V> {
  #values = new Map<K, V>();
  #max: number;
  #make: (key: K) => V;

  /** A memo of `make`'s values, holding at most `max` of them. */
  constructor(make: (key: K) => V, max = 1_000) {
    this.#make = make;
    this.#max = max;
  }

  /** The value of `key`, made on first use. */
  get(key: K): V {
    let value = this.#values.get(key);
    if (value === undefined) {
      if (this.#values.size >= this.#max) this.#values.clear();
      this.#values.set(key, value = this.#make(key));
    }
    return value;
  }
}
