/**
 * @module
 * The versionstamp cache of the KV backend: records with their versionstamps, kept from a
 * listing or a commit for the write that usually follows, so that write need not read them
 * again. A stale entry costs nothing but a retry: its check fails and it is read afresh.
 */

import { isFinal } from "../effects.ts";
import type { Change, Commit } from "../storage.ts";
import type { Key } from "./projections.ts";
import type { Row, RowEntry } from "./rows.ts";

/** Most entries kept (the map is emptied beyond). */
const MAX_KNOWN = 10_000;
/** Most finished jobs kept, the oldest dropped first: more than a busy worker finishes in 0.5 s. */
const MAX_FINALS = 4_096;
/**
 * How close to the newest job this instance finished retention's listings must reach for it to
 * keep the jobs it finishes: a pruner of a long keep would find none of them here, and keeping
 * them would only move garbage into the old generation.
 */
const FINALS_REACH_MS = 5_000;

/**
 * Records known at a versionstamp: ready-queue, due and finished listings (for the claims,
 * promotions and removals that follow them), this instance's claims, and the jobs it finished
 * (for retention's listing and removal: a prune of a short keep then reads no row).
 */
export class KnownRecords {
  #known = new Map<string, RowEntry>();
  #finals = new Map<string, RowEntry>();
  /** Whether retention's last listing reached within FINALS_REACH_MS of `#newest`. */
  #keepFinals = false;
  /** When the newest job this instance finished entered its state (its records' clock). */
  #newest = -Infinity;

  /** Keeps an entry (emptied first when it has grown past its bound). */
  keep(id: string, entry: RowEntry): void {
    if (entry.record && isFinal(entry.record.state)) return this.#final(id, entry);
    if (this.#known.size >= MAX_KNOWN) this.#known.clear();
    this.#known.set(id, entry);
  }

  #final(id: string, entry: RowEntry): void {
    this.#finals.delete(id);
    if (this.#finals.size >= MAX_FINALS) this.#finals.delete(this.#finals.keys().next().value!);
    this.#finals.set(id, entry);
  }

  /**
   * Notes when the newest job of a retention listing entered its state: while listings reach
   * jobs that recent, the jobs this instance finishes are kept for them.
   */
  listed(stateAt: number): void {
    this.#keepFinals = stateAt >= this.#newest - FINALS_REACH_MS;
  }

  /**
   * The finished job `id` as this instance last wrote or read it, when it is in `state` since
   * `stateAt` (as its state index entry says), without taking it out. Another process may have
   * changed it since (a continuation added): a removal's check of the versionstamp refuses it.
   */
  finished(id: string, state: string, stateAt: unknown): RowEntry | undefined {
    const entry = this.#finals.get(id);
    const record = entry?.record;
    return record?.state === state && record.stateAt === stateAt ? entry : undefined;
  }

  /**
   * Keeps the records a commit left in Processing, at the commit's versionstamp: the outcome of
   * a running job is written by this same instance. Finished ones too while retention lists
   * recent jobs (see `listed`): it lists and removes them next.
   */
  remember(
    batch: { change: Change; rows?: { row: Row }[] }[],
    versionstamp: string,
    key: (id: string) => Key,
  ): void {
    for (const { change, rows } of batch) {
      change.commits.forEach(({ id, record }, c) => {
        const final = isFinal(record.state);
        if (final && record.stateAt > this.#newest) this.#newest = record.stateAt;
        if (!final || !this.#keepFinals) this.#finals.delete(id);
        if (record.state === "Processing" || (final && this.#keepFinals)) {
          this.keep(id, { key: key(id), versionstamp, row: rows![c].row, record });
        }
      });
    }
  }

  /**
   * The stored entries the commits expect: those known at the expected version from here, the
   * rest through `read`. Every entry is taken out (a write follows that changes it).
   */
  async current(
    commits: readonly Pick<Commit, "id" | "expect">[],
    read: (ids: string[]) => Promise<Map<string, RowEntry>>,
  ): Promise<Map<string, RowEntry>> {
    const current = new Map<string, RowEntry>();
    const unread: string[] = [];
    for (const { id, expect } of commits) {
      const listed = this.#known.get(id) ?? this.#finals.get(id);
      this.#known.delete(id);
      this.#finals.delete(id);
      if (listed && listed.record?.version === expect) current.set(id, listed);
      else unread.push(id);
    }
    if (unread.length) {
      for (const [id, entry] of await read(unread)) current.set(id, entry);
    }
    return current;
  }
}
