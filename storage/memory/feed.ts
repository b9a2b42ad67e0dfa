/**
 * @module
 * The memory backend's event feed: one entry per append call, numbered 1, 2, 3, ..., the
 * newest `window` kept.
 */

import { CursorExpiredError } from "../event_errors.ts";
import { badCursor } from "../cursor.ts";
import type { EventFeed, FeedEntry, FeedQuery, FeedRef } from "../feed.ts";

/** Entries kept by default (the newest). */
export const MEMORY_FEED_WINDOW = 100_000;

/** An in-process feed. */
export class MemoryFeed implements EventFeed {
  #entries: FeedRef[][] = [];
  /** Number of the first kept entry. */
  #first = 1;
  #window: number;
  #listeners = new Set<(ids?: readonly string[]) => void>();

  /** A feed keeping the newest `window` entries. */
  constructor(window = MEMORY_FEED_WINDOW) {
    this.#window = window;
  }

  /** Adds the entry of one append (nothing when it wrote no events) and wakes the listeners. */
  add(refs: FeedRef[]): void {
    if (!refs.length) return;
    this.#entries.push(structuredClone(refs));
    const over = this.#entries.length - this.#window;
    if (over > 0) {
      this.#entries.splice(0, over);
      this.#first += over;
    }
    const ids = refs.map((ref) => ref.id);
    for (const listener of this.#listeners) listener(ids);
  }

  read(query: FeedQuery): Promise<FeedEntry[]> {
    const limit = query.limit ?? 100;
    let from = this.#first;
    if (query.after !== undefined && query.after !== "") {
      const at = Number(query.after);
      if (!Number.isSafeInteger(at) || at < 0) return Promise.reject(badCursor(query.after));
      from = query.inclusive ? at : at + 1;
      if (from < this.#first) {
        return Promise.reject(new CursorExpiredError(query.after, String(this.#first)));
      }
    }
    const start = from - this.#first;
    return Promise.resolve(
      this.#entries.slice(start, start + limit).map((refs, i) => ({
        cursor: String(from + i),
        refs: structuredClone(refs),
      })),
    );
  }

  head(): Promise<string> {
    const last = this.#first + this.#entries.length - 1;
    return Promise.resolve(last >= 1 ? String(last) : "");
  }

  listen(wake: (ids?: readonly string[]) => void): () => void {
    this.#listeners.add(wake);
    return () => this.#listeners.delete(wake);
  }

  /** Stops waking listeners. */
  close(): void {
    this.#listeners.clear();
  }
}
