/**
 * @module
 * A sorted set of tuple keys (numbers and strings, compared element by element, like Deno KV
 * keys) on a plain array with binary search. Used by the memory backend for its indexes.
 */

/** A tuple key. */
export type Tuple = readonly (string | number)[];

/** Compares two tuple keys element by element (numbers before strings, like Deno KV). */
export function compareTuples(a: Tuple, b: Tuple): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i], y = b[i];
    if (x === y) continue;
    if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** A sorted set of tuples. */
export class SortedSet {
  #items: Tuple[] = [];

  /** Number of keys. */
  get size(): number {
    return this.#items.length;
  }

  /** Index of the first key >= `key`. */
  #lowerBound(key: Tuple): number {
    let lo = 0, hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareTuples(this.#items[mid], key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Inserts `key` unless present. */
  add(key: Tuple): void {
    const i = this.#lowerBound(key);
    if (i < this.#items.length && compareTuples(this.#items[i], key) === 0) return;
    this.#items.splice(i, 0, key);
  }

  /** Removes `key` if present. */
  delete(key: Tuple): void {
    const i = this.#lowerBound(key);
    if (i < this.#items.length && compareTuples(this.#items[i], key) === 0) {
      this.#items.splice(i, 1);
    }
  }

  /**
   * Up to `limit` keys in ascending (or descending, with `reverse`) order, starting strictly
   * after `after` when given.
   */
  range(options: { after?: Tuple; limit: number; reverse?: boolean; until?: Tuple }): Tuple[] {
    const { after, limit, reverse = false, until } = options;
    const out: Tuple[] = [];
    if (!reverse) {
      let i = after ? this.#lowerBound(after) : 0;
      if (after && i < this.#items.length && compareTuples(this.#items[i], after) === 0) i++;
      for (; i < this.#items.length && out.length < limit; i++) {
        if (until && compareTuples(this.#items[i], until) > 0) break;
        out.push(this.#items[i]);
      }
    } else {
      let i = (after ? this.#lowerBound(after) : this.#items.length) - 1;
      for (; i >= 0 && out.length < limit; i--) out.push(this.#items[i]);
    }
    return out;
  }

  /** All keys in ascending order. */
  all(): Tuple[] {
    return this.#items.slice();
  }

  /** Removes every key. */
  clear(): void {
    this.#items = [];
  }
}
