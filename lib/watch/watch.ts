/**
 * @module
 * `watch`: every job's events in commit order, as an async iterable resumable from a cursor.
 * It pages through the storage's event feed (one entry per atomic append, naming the jobs and
 * log positions written) and reads the events back from the job logs, so the feed itself
 * stays small. At least once: a reader resuming from a cursor it saved after handling an event
 * sees every later event; a cursor older than the feed's window is refused with
 * `CursorExpiredError`, never skipped over.
 */

import type { Storage } from "../../storage/storage.ts";
import type { FeedEntry } from "../../storage/feed.ts";
import { InvalidOptionError, StorageUnavailableError } from "../../storage/errors.ts";
import { UnsupportedError } from "../../storage/event_errors.ts";
import type { JobEvent } from "../events.ts";
import { checkJobId, checkQueueName } from "../job.ts";
import { checkText, readOptions } from "../options.ts";

/** Options of `watch`. */
export interface WatchOptions {
  /** Only events of jobs of this queue. */
  queue?: string;
  /** Only events of jobs with this name. */
  name?: string;
  /** Only events of this job. */
  jobId?: string;
  /**
   * Resume after this cursor (a `cursor` a watch yielded), or `"start"` for the oldest events
   * the feed keeps. Absent: only events appended from now on.
   */
  since?: string;
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
}

/** One event as `watch` yields it. */
export interface WatchedEvent {
  /** Save it to resume after this event (`watch({ since: cursor })`). */
  cursor: string;
  /** The job the event belongs to. */
  jobId: string;
  /** The event, as in the job's log. */
  event: JobEvent;
}

/** Entries read per page of the feed. */
const PAGE = 100;
/** The fallback poll, for appends a backend cannot announce across processes. */
const POLL_MS = 1_000;
/** Longest pause between reads while the storage is unavailable. */
const MAX_BACKOFF_MS = 2_000;

const CURSOR = /^(.+)#(\d+)$/;

/** Where to start: after entry `after` (its first `skip` events already seen when inclusive). */
interface Position {
  after?: string;
  inclusive: boolean;
  skip: number;
}

function readWatchOptions(options: unknown): WatchOptions {
  const read = readOptions(options, {
    call: "watch",
    allowed: ["queue", "name", "jobId", "since", "signal"],
  }) as WatchOptions;
  if (read.queue !== undefined) checkQueueName(read.queue);
  if (read.jobId !== undefined) checkJobId(read.jobId);
  checkText(read.name, "watch name", 128);
  checkText(read.since, "watch since", 256);
  if (read.since !== undefined && read.since !== "start" && !CURSOR.test(read.since)) {
    throw new InvalidOptionError("watch since", read.since, 'must be a watch cursor or "start"');
  }
  if (read.signal !== undefined && !(read.signal instanceof AbortSignal)) {
    throw new InvalidOptionError("watch signal", read.signal, "must be an AbortSignal");
  }
  return read;
}

/**
 * Every job's events in commit order (filtered by `queue`, `name`, `jobId`), from `since` on,
 * until `signal` aborts. Throws `UnsupportedError` on a storage without a feed.
 */
export async function* watch(
  storage: Storage,
  options: WatchOptions = {},
): AsyncGenerator<WatchedEvent, void, undefined> {
  const read = readWatchOptions(options);
  const feed = storage.feed;
  if (!feed) {
    throw new UnsupportedError("watch", storage.address, "this storage keeps no event feed");
  }
  const { signal } = read;
  let woken = false;
  let wake = () => {};
  const stop = feed.listen((ids) => {
    if (read.jobId !== undefined && ids && !ids.includes(read.jobId)) return;
    woken = true;
    wake();
  });
  const onAbort = () => wake();
  signal?.addEventListener("abort", onAbort);
  try {
    const position = await start(read.since, () => feed.head());
    let backoff = 50;
    while (!signal?.aborted) {
      woken = false;
      let entries: FeedEntry[];
      try {
        entries = await feed.read({ ...position, limit: PAGE });
        backoff = 50;
      } catch (error) {
        // The storage restarts or the network drops: read again from the same place.
        if (!(error instanceof StorageUnavailableError) || /closed/.test(error.message)) {
          throw error;
        }
        await pause(backoff, signal);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        continue;
      }
      for (const entry of entries) {
        const events = await expand(storage, entry, read);
        const skip = position.inclusive && entry.cursor === position.after ? position.skip : 0;
        for (const [i, item] of events.entries()) {
          if (i < skip || !item) continue;
          yield { cursor: `${entry.cursor}#${i + 1}`, jobId: item.jobId, event: item.event };
          if (signal?.aborted) return;
        }
        Object.assign(position, { after: entry.cursor, inclusive: false, skip: 0 });
      }
      if (entries.length === PAGE || woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = () => {};
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    stop();
  }
}

/** The position `since` names; absent: the feed's head now (only new events). */
async function start(since: string | undefined, head: () => Promise<string>): Promise<Position> {
  if (since === "start") return { inclusive: false, skip: 0 };
  if (since === undefined) {
    const at = await head();
    return at ? { after: at, inclusive: false, skip: 0 } : { inclusive: false, skip: 0 };
  }
  const [, after, skip] = since.match(CURSOR)!;
  return { after, inclusive: true, skip: Number(skip) };
}

/**
 * The events of `entry`, in order, read back from the job logs; null where filtered out or
 * where the job is gone (removed by retention since), so that positions stay the entry's.
 */
async function expand(
  storage: Storage,
  entry: FeedEntry,
  filter: WatchOptions,
): Promise<({ jobId: string; event: JobEvent } | null)[]> {
  const wanted = (id: string) => filter.jobId === undefined || filter.jobId === id;
  const ids = [...new Set(entry.refs.map((ref) => ref.id).filter(wanted))];
  const logs = new Map(
    await Promise.all(ids.map(async (id) => [id, await storage.events(id)] as const)),
  );
  const out: ({ jobId: string; event: JobEvent } | null)[] = [];
  for (const ref of entry.refs) {
    const log = logs.get(ref.id);
    const created = log?.[0];
    const keep = log && created?.type === "created" &&
      (filter.queue === undefined || created.queue === filter.queue) &&
      (filter.name === undefined || created.name === filter.name);
    for (let seq = ref.from + 1; seq <= ref.from + ref.count; seq++) {
      const event = keep ? log[seq - 1] : undefined;
      out.push(event?.seq === seq ? { jobId: ref.id, event } : null);
    }
  }
  return out;
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
