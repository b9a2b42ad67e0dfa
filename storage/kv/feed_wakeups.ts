/**
 * @module
 * Cross-process wake-ups of the event feed for a local KV file (watch, waitFor), apart from the
 * workers' `<file>.wake/`: a process listening to the feed keeps a marker file
 * `<file>.feed/listener-<pid>` and watches that directory; a writer touches `<file>.feed/tick`
 * after its commits only while some marker exists (looked up at most once a second), so that
 * without listeners the feed costs writers no file writes. A marker left by a killed process
 * only costs touches until the directory is cleaned.
 */

/** How long a writer trusts its last look for listeners. */
const LOOK_MS = 1_000;
const TICK = new Uint8Array([0x31]);

/** The feed wake-ups of one KV storage on a local file. */
export class FeedWakeups {
  #dir?: string;
  #listeners = new Set<() => void>();
  #watcher?: Deno.FsWatcher;
  #marker?: string;
  #closed = false;
  #touching = false;
  #again = false;
  /** Whether some process listens, and when that was looked up. */
  #listened = { any: false, at: -Infinity };

  /** Uses `<path>.feed` (a read-only place: none, and other processes are polled). */
  async useDirectory(path: string): Promise<void> {
    const dir = `${path}.feed`;
    try {
      await Deno.mkdir(dir, { recursive: true });
      this.#dir = dir;
    } catch {
      // read-only place: watchers of other processes poll
    }
  }

  /** Calls `wake` when another process's commit grew the feed; returns the function that stops. */
  listen(wake: () => void): () => void {
    this.#listeners.add(wake);
    this.#watch();
    return () => this.#listeners.delete(wake);
  }

  /** Tells listening processes that the feed grew (coalesced; nothing when none listens). */
  touch(): void {
    if (!this.#dir || this.#closed || this.#touching && (this.#again = true)) return;
    this.#touching = true;
    const dir = this.#dir;
    (async () => {
      do {
        this.#again = false;
        if (performance.now() - this.#listened.at > LOOK_MS) {
          let any = false;
          for await (const entry of Deno.readDir(dir)) {
            if (entry.name.startsWith("listener-") && `${dir}/${entry.name}` !== this.#marker) {
              any = true;
              break;
            }
          }
          this.#listened = { any, at: performance.now() };
        }
        if (this.#listened.any) await Deno.writeFile(`${dir}/tick`, TICK);
      } while (this.#again && !this.#closed);
    })().catch(() => {}).finally(() => this.#touching = false);
  }

  /** Stops watching and removes this process's marker. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#watcher?.close();
    if (this.#marker) {
      try {
        Deno.removeSync(this.#marker);
      } catch { /* gone already */ }
    }
  }

  #watch(): void {
    if (!this.#dir || this.#watcher) return;
    try {
      this.#marker = `${this.#dir}/listener-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
      Deno.writeFileSync(this.#marker, TICK);
      this.#watcher = Deno.watchFs(this.#dir, { recursive: false });
    } catch {
      return; // no write or read permission, or no inotify: polling alone
    }
    const watcher = this.#watcher;
    (async () => {
      for await (const event of watcher) {
        if (event.paths.some((path) => path.endsWith("/tick"))) {
          for (const listener of this.#listeners) listener();
        }
      }
    })().catch(() => {/* ends when closed */});
  }
}
