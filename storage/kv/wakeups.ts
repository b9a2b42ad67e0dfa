/**
 * @module
 * Worker wake-ups on Deno KV: KV queue messages (Deno's default database) and, for a local
 * file, a `<file>.wake/` directory other processes watch. Polling stays the truth; these only
 * shorten the wait.
 */

import { CoalescedWrite, TICK, tickDirectory, watchTicks } from "./tick_dir.ts";

/** The queue message of a wake-up. */
export const WAKE = { taskflow: "wake" } as const;

/** The wake-ups of one KV storage. */
export class KvWakeups {
  #kv: Deno.Kv;
  #queue: boolean;
  #listeners = new Set<() => void>();
  #listening = false;
  #closed = false;
  /** `<file>.wake`, the directory of cross-process wake-ups (local files only). */
  #dir?: string;
  #watcher?: Deno.FsWatcher;
  #touches = new CoalescedWrite(
    () => Deno.writeFile(`${this.#dir}/tick`, TICK),
    () => this.#dir = undefined, // cannot write there: other processes rely on polling
    () => this.#closed,
  );

  /** Wake-ups for `kv`; `queue`: KV queue messages are sent and listened to. */
  constructor(kv: Deno.Kv, queue: boolean) {
    this.#kv = kv;
    this.#queue = queue;
  }

  /** Whether writes enqueue KV queue messages as wake-ups. */
  get queue(): boolean {
    return this.#queue;
  }

  /** Makes `<path>.wake` the directory of cross-process wake-ups (read-only places: none). */
  async useDirectory(path: string): Promise<void> {
    // A read-only place has none: workers in other processes find new jobs by polling.
    this.#dir = await tickDirectory(path, ".wake");
  }

  /** Calls `wake` on every wake-up until the returned function is called. */
  listen(wake: () => void): () => void {
    this.#listeners.add(wake);
    if (this.#queue) this.#listenQueue();
    this.#watchFile();
    return () => this.#listeners.delete(wake);
  }

  /** Wakes this process's listeners. */
  wake(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Tells workers in other processes that jobs became ready or scheduled (coalesced). */
  touch(): void {
    if (!this.#dir || this.#closed) return;
    this.#touches.run();
  }

  /** Stops listening and watching. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#watcher?.close();
  }

  #listenQueue(): void {
    if (this.#listening) return;
    this.#listening = true;
    // The handler only signals: a job runs in the worker's bounded pool, never in here, since
    // listenQueue has no concurrency limit and redelivers messages whose handler runs long.
    this.#kv.listenQueue((message) => {
      if ((message as typeof WAKE)?.taskflow === "wake") this.wake();
    }).catch(() => {/* ends when the database is closed */});
  }

  /**
   * Cross-process wake-ups for a local file. KV queue messages from another process arrive only
   * by a fallback poll and kv.watch misses other processes' writes, so a writer touches
   * `<file>.wake/tick` after each commit that makes jobs ready or scheduled, and workers watch
   * that directory. Never the database's own directory: Deno.watchFs opens every file it
   * reports as modified, and closing any descriptor of a file drops all of the process's POSIX
   * locks on it, so watching the SQLite files released SQLite's locks and lost commits.
   */
  #watchFile(): void {
    if (!this.#dir || this.#watcher) return;
    const tick = (event: Deno.FsEvent) => event.kind === "modify" || event.kind === "create";
    this.#watcher = watchTicks(this.#dir, tick, () => this.wake());
  }
}
