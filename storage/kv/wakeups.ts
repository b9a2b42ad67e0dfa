/**
 * @module
 * Worker wake-ups on Deno KV: KV queue messages (Deno's default database) and, for a local
 * file, a `<file>.wake/` directory other processes watch. Polling stays the truth; these only
 * shorten the wait.
 */

/** The queue message of a wake-up. */
export const WAKE = { taskflow: "wake" } as const;

/** What a writer puts in `<file>.wake/tick`: any write wakes the watchers. */
const TICK = new Uint8Array([0x31]);

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
  #touching = false;
  #touchAgain = false;

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
    const dir = `${path}.wake`;
    try {
      await Deno.mkdir(dir, { recursive: true });
      this.#dir = dir;
    } catch {
      // read-only place: workers in other processes find new jobs by polling
    }
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
    if (this.#touching) {
      this.#touchAgain = true;
      return;
    }
    this.#touching = true;
    const tick = `${this.#dir}/tick`;
    (async () => {
      do {
        this.#touchAgain = false;
        await Deno.writeFile(tick, TICK);
      } while (this.#touchAgain && !this.#closed);
    })().catch(() => {
      this.#dir = undefined; // cannot write there: other processes rely on polling
    }).finally(() => this.#touching = false);
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
    try {
      this.#watcher = Deno.watchFs(this.#dir, { recursive: false });
    } catch {
      return; // no read permission or no inotify: polling alone
    }
    const watcher = this.#watcher;
    (async () => {
      for await (const event of watcher) {
        if (event.kind === "modify" || event.kind === "create") this.wake();
      }
    })().catch(() => {/* ends when closed */});
  }
}
