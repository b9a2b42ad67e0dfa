/**
 * @module
 * The KV backend's event feed: each atomic write that appends events also writes one entry
 * naming the jobs and log positions it wrote, and moves the head `feedhead` under a check, so
 * entries are in commit order (what a versionstamp orders, but readable by key). The feed is
 * measured in slots of {@link SLOT_BYTES}: an entry of k slots is stored at `feed/<h>` and moves
 * the head from h to h + k, so entries tile the slots without gaps and an entry's end is the
 * next one's start. The newest `window` slots are kept (a window by size): a write of k slots
 * deletes the k slots leaving the window, whichever entries start there. Writes of one process
 * take turns on the head (they would only fail each other's check); another process's write
 * fails the check and the writer reads the head again.
 */

import { badCursor } from "../cursor.ts";
import { CursorExpiredError } from "../event_errors.ts";
import { decodeRefs, encodeRefs, type EventFeed, type FeedEntry, type FeedQuery } from "../feed.ts";
import type { FeedRef } from "../feed.ts";
import type { KeyOf } from "./projections.ts";
import type { FeedWakeups } from "./feed_wakeups.ts";

/** Bytes of refs per slot. */
export const SLOT_BYTES = 256;
/** Slots kept by default: about 256 KiB of refs (some 8,000 job transitions). */
export const KV_FEED_WINDOW = 1_024;

/** An entry's position: `<start>.<end>` in slots. */
const CURSOR = /^(\d+)\.(\d+)$/;

/** The head as last read or written: the next free slot and the head's versionstamp. */
interface Head {
  n: number;
  versionstamp: string | null;
}

/** A turn on the head: what to write into an atomic, and how it went. */
export interface FeedTurn {
  /** Adds the head check, the entry and the window's trim to `atomic` (nothing for no refs). */
  write(atomic: Deno.AtomicOperation, refs: FeedRef[]): void;
  /** The atomic committed (`versionstamp`) or failed (null): ends the turn. */
  end(versionstamp: string | null): void;
  /** After a failed commit: true when another process moved the head meanwhile. */
  moved(): Promise<boolean>;
}

/** The feed of one KV storage. */
export class KvFeed implements EventFeed {
  #kv: Deno.Kv;
  #key: KeyOf;
  #window: number;
  #head?: Head;
  #turn: Promise<void> = Promise.resolve();
  #listeners = new Set<(ids?: readonly string[]) => void>();
  #wakeups: FeedWakeups;

  /** The feed under `key`'s prefix in `kv`, keeping `window` slots; `wakeups` cross processes. */
  constructor(kv: Deno.Kv, key: KeyOf, how: { window?: number; wakeups: FeedWakeups }) {
    this.#kv = kv;
    this.#key = key;
    this.#window = how.window ?? KV_FEED_WINDOW;
    this.#wakeups = how.wakeups;
  }

  /** Waits for this process's turn on the head; the turn must be ended. */
  async turn(): Promise<FeedTurn> {
    let release!: () => void;
    const previous = this.#turn;
    this.#turn = new Promise((resolve) => release = resolve);
    await previous;
    try {
      this.#head ??= await this.#readHead();
    } catch (error) {
      release();
      throw error;
    }
    const head = this.#head;
    let written: { n: number; ids: string[] } | undefined;
    return {
      write: (atomic, refs) => {
        if (!refs.length) return;
        const text = encodeRefs(refs);
        const end = head.n + Math.max(1, Math.ceil(text.length / SLOT_BYTES));
        atomic.check({ key: this.#key("feedhead"), versionstamp: head.versionstamp });
        atomic.set(this.#key("feedhead"), end);
        atomic.set(this.#key("feed", head.n), text);
        for (let slot = Math.max(0, head.n - this.#window); slot < end - this.#window; slot++) {
          atomic.delete(this.#key("feed", slot));
        }
        written = { n: end, ids: refs.map((ref) => ref.id) };
      },
      end: (versionstamp) => {
        if (written && versionstamp) this.#head = { n: written.n, versionstamp };
        // Failed: another process may have moved the head; read it again next turn.
        if (!versionstamp) this.#head = undefined;
        release();
        if (written && versionstamp) {
          this.wake(written.ids);
          this.#wakeups.touch();
        }
      },
      moved: async () => (await this.#readHead()).versionstamp !== head.versionstamp,
    };
  }

  /** Wakes this process's listeners (`ids`: the jobs written; absent: unknown). */
  wake(ids?: readonly string[]): void {
    for (const listener of this.#listeners) listener(ids);
  }

  async #readHead(): Promise<Head> {
    const entry = await this.#kv.get<number>(this.#key("feedhead"));
    return { n: entry.value ?? 0, versionstamp: entry.versionstamp };
  }

  async read(query: FeedQuery): Promise<FeedEntry[]> {
    const limit = query.limit ?? 100;
    const { n: next } = await this.#readHead();
    const oldest = Math.max(0, next - this.#window);
    let from = oldest;
    if (query.after !== undefined && query.after !== "") {
      const match = query.after.match(CURSOR);
      if (!match) throw badCursor(query.after);
      from = Number(query.inclusive ? match[1] : match[2]);
      if (from < oldest) throw new CursorExpiredError(query.after, `${oldest}`);
    }
    const entries: FeedEntry[] = [];
    const iterator = this.#kv.list<string>(
      { start: this.#key("feed", from), end: this.#key("feed", Number.MAX_SAFE_INTEGER) },
      { limit },
    );
    let at: number | undefined = query.after ? from : undefined;
    for await (const entry of iterator) {
      const start = entry.key[2] as number;
      // Entries tile the slots: one starting past `at` means the trim passed `at` meanwhile.
      if (at !== undefined && start !== at) {
        throw new CursorExpiredError(query.after ?? "", `${start}`);
      }
      at = start + Math.max(1, Math.ceil(entry.value.length / SLOT_BYTES));
      entries.push({ cursor: `${start}.${at}`, refs: decodeRefs(entry.value) });
    }
    return entries;
  }

  async head(): Promise<string> {
    const { n } = await this.#readHead();
    return `${n}.${n}`;
  }

  listen(wake: (ids?: readonly string[]) => void): () => void {
    this.#listeners.add(wake);
    const stop = this.#wakeups.listen(() => wake());
    return () => {
      this.#listeners.delete(wake);
      stop();
    };
  }

  /** Stops waking listeners. */
  close(): void {
    this.#listeners.clear();
  }
}
