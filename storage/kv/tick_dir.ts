/**
 * @module
 * A directory beside a local KV file whose `tick` file other processes watch: the cross-process
 * wake-up shared by the workers' `<file>.wake/` and the feed's `<file>.feed/`. Never the
 * database's own directory (see `KvWakeups`).
 */

/** What a writer puts in `tick`: any write wakes the watchers. */
export const TICK = new Uint8Array([0x31]);

/** Creates `<path><suffix>`; undefined in a read-only place (other processes then poll). */
export async function tickDirectory(path: string, suffix: string): Promise<string | undefined> {
  const dir = `${path}${suffix}`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    return dir;
  } catch {
    return undefined;
  }
}

/**
 * Watches `dir`, calling `wake` for each event `accept` takes; undefined without read permission
 * or inotify (polling alone). Closing the watcher ends it.
 */
export function watchTicks(
  dir: string,
  accept: (event: Deno.FsEvent) => boolean,
  wake: () => void,
): Deno.FsWatcher | undefined {
  let watcher: Deno.FsWatcher;
  try {
    watcher = Deno.watchFs(dir, { recursive: false });
  } catch {
    return undefined;
  }
  (async () => {
    for await (const event of watcher) {
      if (accept(event)) wake();
    }
  })().catch(() => {/* ends when closed */});
  return watcher;
}

/**
 * Runs `write` once at a time: a call while one runs asks for one more run after it, so a burst of
 * commits costs at most two writes. `failed` hears a write's error.
 */
export class CoalescedWrite {
  #running = false;
  #again = false;
  #write: () => Promise<void>;
  #failed: (error: unknown) => void;
  #stopped: () => boolean;

  /** `stopped` ends the repeats once the storage closes. */
  constructor(
    write: () => Promise<void>,
    failed: (error: unknown) => void,
    stopped: () => boolean,
  ) {
    this.#write = write;
    this.#failed = failed;
    this.#stopped = stopped;
  }

  /** Writes now, or once more after the write in flight. */
  run(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    (async () => {
      do {
        this.#again = false;
        await this.#write();
      } while (this.#again && !this.#stopped());
    })().catch(this.#failed).finally(() => this.#running = false);
  }
}
