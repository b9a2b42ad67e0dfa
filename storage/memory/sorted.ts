/**
 * @module
 * A sorted set of tuple keys (numbers and strings, compared element by element, like Deno KV
 * keys), kept in chunks of a bounded size so that inserting or removing anywhere, including at
 * the head of a long queue, costs O(√n) at worst instead of O(n). Used by the memory backend.
 */

/** A tuple key. */
export type Tuple = readonly (string | number)[];

const MAX_CHUNK = 512;

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

function lowerBound(items: Tuple[], key: Tuple): number {
  let lo = 0, hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareTuples(items[mid], key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A sorted set of tuples. */
export class SortedSet {
  /** Non-empty sorted chunks, in order; each chunk's last key is below the next chunk's first. */
  #chunks: Tuple[][] = [];
  #size = 0;

  /** Number of keys. */
  get size(): number {
    return this.#size;
  }

  /** Index of the chunk that holds (or would hold) `key`. */
  #chunkFor(key: Tuple): number {
    const chunks = this.#chunks;
    let lo = 0, hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareTuples(chunks[mid][chunks[mid].length - 1], key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Inserts `key` unless present. */
  add(key: Tuple): void {
    if (this.#chunks.length === 0) {
      this.#chunks.push([key]);
      this.#size = 1;
      return;
    }
    const c = this.#chunkFor(key);
    const chunk = this.#chunks[c];
    const i = lowerBound(chunk, key);
    if (i < chunk.length && compareTuples(chunk[i], key) === 0) return;
    chunk.splice(i, 0, key);
    this.#size++;
    if (chunk.length > MAX_CHUNK) this.#chunks.splice(c + 1, 0, chunk.splice(MAX_CHUNK / 2));
  }

  /** Removes `key` if present. */
  delete(key: Tuple): void {
    if (this.#chunks.length === 0) return;
    const c = this.#chunkFor(key);
    const chunk = this.#chunks[c];
    const i = lowerBound(chunk, key);
    if (i >= chunk.length || compareTuples(chunk[i], key) !== 0) return;
    chunk.splice(i, 1);
    this.#size--;
    if (chunk.length === 0) this.#chunks.splice(c, 1);
  }

  /**
   * Up to `limit` keys in ascending (or descending, with `reverse`) order, starting strictly
   * after `after` when given, and (ascending only) not beyond `until`.
   */
  range(options: { after?: Tuple; limit: number; reverse?: boolean; until?: Tuple }): Tuple[] {
    const { after, limit, reverse = false, until } = options;
    const out: Tuple[] = [];
    const chunks = this.#chunks;
    if (chunks.length === 0 || limit <= 0) return out;
    if (!reverse) {
      let c = after ? this.#chunkFor(after) : 0;
      let i = after ? lowerBound(chunks[c], after) : 0;
      if (after && i < chunks[c].length && compareTuples(chunks[c][i], after) === 0) i++;
      for (; c < chunks.length; c++, i = 0) {
        for (; i < chunks[c].length; i++) {
          if (out.length >= limit || (until && compareTuples(chunks[c][i], until) > 0)) return out;
          out.push(chunks[c][i]);
        }
      }
    } else {
      let c = after ? this.#chunkFor(after) : chunks.length - 1;
      let i = after ? lowerBound(chunks[c], after) - 1 : chunks[c].length - 1;
      for (; c >= 0; c--, i = c >= 0 ? chunks[c].length - 1 : 0) {
        for (; i >= 0; i--) {
          if (out.length >= limit) return out;
          out.push(chunks[c][i]);
        }
      }
    }
    return out;
  }

  /** All keys in ascending order. */
  all(): Tuple[] {
    return this.#chunks.flat();
  }

  /** Removes every key. */
  clear(): void {
    this.#chunks = [];
    this.#size = 0;
  }
}
