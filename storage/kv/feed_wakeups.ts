/**
 * @module
 * Cross-process wake-ups of the event feed for a local KV file (watch, waitFor), apart from the
 * workers' `<file>.wake/`: a process listening to the feed keeps a marker file
 * `<file>.feed/listener-<pid>` and watches that directory; a writer touches `<file>.feed/tick`
 * after its commits only while some marker exists (looked up at most once a second), so that
 * without listeners the feed costs writers no file writes. A marker left by a killed process
 * only costs touches until the directory is cleaned.
 */

import { CoalescedWrite, TICK, tickDirectory, watchTicks } from "./tick_dir.ts";

/** How long a writer trusts its last look for listeners. */
const LOOK_MS = 1_000;

/** The feed wake-ups of one KV storage on a local file. */
export class FeedWakeups {
  #dir?: string;
  #listeners = new Set<() => void>();
  #watcher?: Deno.FsWatcher;
  #marker?: string;
  #closed = false;
  #touches = new CoalescedWrite(() => this.#tick(), () => {}, () => this.#closed);
  /** Whether some process listens, and when that was looked up. */
  #listened = { any: false, at: -Infinity };

  /** Uses `<path>.feed` (a read-only place: none, and other processes are polled). */
  async useDirectory(path: string): Promise<void> {
    // A read-only place has none: watchers of other processes poll.
    this.#dir = await tickDirectory(path, ".feed");
  }

  /** Calls `wake` when another process's commit grew the feed; returns the function that stops. */
  listen(wake: () => void): () => void {
    this.#listeners.add(wake);
    this.#watch();
    return () => this.#listeners.delete(wake);
  }

  /** Tells listening processes that the feed grew (coalesced; nothing when none listens). */
  touch(): void {
    if (!this.#dir || this.#closed) return;
    this.#touches.run();
  }

  /** Writes the tick file when some other process listens (looked up at most every LOOK_MS). */
  async #tick(): Promise<void> {
    const dir = this.#dir!;
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
    } catch {
      return; // no write permission: polling alone
    }
    const tick = (event: Deno.FsEvent) => event.paths.some((path) => path.endsWith("/tick"));
    this.#watcher = watchTicks(this.#dir, tick, () => {
      for (const listener of this.#listeners) listener();
    });
  }
}
