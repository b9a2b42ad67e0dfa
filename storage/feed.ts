/**
 * @module
 * The event feed's contract: every append that writes events also writes one feed entry, in
 * the same atomic write, naming the jobs and the positions in their logs it wrote (never the
 * events themselves, so the feed stays small). Readers page through entries in commit order and
 * read the events back from the job logs. The feed is a window: old entries are dropped, and a
 * cursor older than the window is refused with `CURSOR_EXPIRED`, never skipped silently.
 */

/** Events `from + 1 .. from + count` of job `id`, written by one append. */
export interface FeedRef {
  /** The job's id. */
  id: string;
  /** The version the events follow (0 for a new job). */
  from: number;
  /** How many events were written. */
  count: number;
}

/** One atomic append's entry: its position in the feed and the events it wrote, in order. */
export interface FeedEntry {
  /** The entry's position (opaque, ordered by commit). */
  cursor: string;
  /** The events the append wrote, job by job in the order it wrote them. */
  refs: FeedRef[];
}

/** What {@link EventFeed.read} is asked for. */
export interface FeedQuery {
  /** Read entries after this position (absent: from the oldest entry kept). */
  after?: string;
  /** Include the entry at `after` itself (a reader resuming inside an entry). */
  inclusive?: boolean;
  /** Most entries to return (default 100). */
  limit?: number;
}

/** A storage's feed of appends, in commit order. */
export interface EventFeed {
  /**
   * Entries after `query.after` (or at it, when `inclusive`), oldest first. Throws
   * `CursorExpiredError` when entries after `after` were already dropped from the window.
   */
  read(query: FeedQuery): Promise<FeedEntry[]>;
  /** The position of the newest entry ("" before the first append). */
  head(): Promise<string>;
  /**
   * Calls `wake` after appends: at once with the ids written for this process's appends, and
   * without ids for other processes' appends where the backend can tell (Redis pub/sub, a KV
   * file's wake-up directory); polling covers the rest. Returns a function that stops it.
   */
  listen(wake: (ids?: readonly string[]) => void): () => void;
}

/**
 * A handler's own Deno KV writes, added to the atomic write that records its job's outcome
 * (`ctx.atomic`): they commit together or not at all.
 */
export type AtomicExtra = (op: Deno.AtomicOperation) => void;

/** Refs of the commits an append applied, in order, for its feed entry. */
export function refsOf(
  commits: ReadonlyArray<{ id: string; expect: number; events: readonly unknown[] }>,
): FeedRef[] {
  return commits.flatMap((c) =>
    c.events.length ? [{ id: c.id, from: c.expect, count: c.events.length }] : []
  );
}

/** Refs as one compact line per job, `id from count` (stored this way: a few bytes per job). */
export function encodeRefs(refs: readonly FeedRef[]): string {
  return refs.map((r) => `${r.id} ${r.from} ${r.count}`).join("\n");
}

/** The refs of {@link encodeRefs}' text. */
export function decodeRefs(text: string): FeedRef[] {
  if (!text) return [];
  return text.split("\n").map((line) => {
    const [id, from, count] = line.split(" ");
    return { id, from: Number(from), count: Number(count) };
  });
}
