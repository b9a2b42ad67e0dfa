/**
 * @module
 * The Redis backend's event feed: the `feed` stream, one entry per append call written by the
 * append script, naming each job and the log positions it wrote. Entries are numbered densely
 * (ids `0-<n>`), so a cursor the size trim passed is seen and refused, never skipped.
 */

import { badCursor } from "../cursor.ts";
import { CursorExpiredError } from "../event_errors.ts";
import type { EventFeed, FeedEntry, FeedQuery, FeedRef } from "../feed.ts";
import { Subscriber, type SubscriberOptions } from "./subscriber.ts";
import { command, type RedisDb } from "./context.ts";

const CURSOR = /^\d+$/;

/** An entry's refs (field: job id, value: "from count"). */
function refsOf(flat: string[]): FeedRef[] {
  const refs: FeedRef[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const [from, count] = flat[i + 1].split(" ");
    refs.push({ id: flat[i], from: Number(from), count: Number(count) });
  }
  return refs;
}

/** The feed of one Redis storage. */
export class RedisFeed implements EventFeed {
  #db: RedisDb;
  #run: <T>(work: () => Promise<T>) => Promise<T>;
  #options: SubscriberOptions;
  #listeners = new Set<(ids?: readonly string[]) => void>();
  #subscriber?: Subscriber;
  #closed = false;

  /** The feed of `db`; `run` maps errors as the storage does; `options` open the subscriber. */
  constructor(
    db: RedisDb,
    run: <T>(work: () => Promise<T>) => Promise<T>,
    options: SubscriberOptions,
  ) {
    this.#db = db;
    this.#run = run;
    this.#options = options;
  }

  read(query: FeedQuery): Promise<FeedEntry[]> {
    return this.#run(async () => {
      const limit = query.limit ?? 100;
      const after = query.after || undefined;
      if (after !== undefined && !CURSOR.test(after)) throw badCursor(after);
      const from = after === undefined ? undefined : Number(after) + (query.inclusive ? 0 : 1);
      const rows = await command(
        this.#db,
        "XRANGE",
        this.#db.keys.feed,
        from === undefined ? "-" : `0-${from}`,
        "+",
        "COUNT",
        limit,
      ) as [string, string[]][];
      const entries = rows.map(([id, flat]) => ({ cursor: id.slice(2), refs: refsOf(flat) }));
      // Entries are numbered densely: a first entry past `from` means the trim passed it.
      if (from !== undefined && entries.length && Number(entries[0].cursor) !== from) {
        throw new CursorExpiredError(after!, entries[0].cursor);
      }
      return entries;
    });
  }

  head(): Promise<string> {
    return this.#run(async () => {
      const last = await command(this.#db, "XREVRANGE", this.#db.keys.feed, "+", "-", "COUNT", 1);
      return (last as [string, string[]][])[0]?.[0]?.slice(2) ?? "";
    });
  }

  listen(wake: (ids?: readonly string[]) => void): () => void {
    this.#listeners.add(wake);
    if (!this.#subscriber && !this.#closed) {
      // An append call that wakes workers (on `wake`) does not publish on `feedwake` too.
      this.#subscriber = new Subscriber(
        { ...this.#options, timeoutMs: Infinity },
        [this.#db.keys.feedWake, this.#db.keys.wake],
        () => this.wake(),
      );
    }
    return () => this.#listeners.delete(wake);
  }

  /** True when something in this process listens (an append need not list its jobs otherwise). */
  get listening(): boolean {
    return this.#listeners.size > 0;
  }

  /** Wakes this process's listeners (`ids`: the jobs an append wrote; absent: unknown). */
  wake(ids?: readonly string[]): void {
    for (const listener of this.#listeners) listener(ids);
  }

  /** Stops listening. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#subscriber?.close();
  }
}
