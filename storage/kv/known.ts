/**
 * @module
 * The versionstamp cache of the KV backend: records with their versionstamps, kept from a
 * listing or a commit for the write that usually follows, so that write need not read them
 * again. A stale entry costs nothing but a retry: its check fails and it is read afresh.
 */

import type { Change, Commit } from "../storage.ts";
import type { Key } from "./projections.ts";
import type { Row, RowEntry } from "./rows.ts";

/** Most entries kept (the map is emptied beyond). */
const MAX_KNOWN = 10_000;

/**
 * Records known at a versionstamp: ready-queue, due and finished listings (for the claims,
 * promotions and removals that follow them), and this instance's claims.
 */
export class KnownRecords {
  #known = new Map<string, RowEntry>();

  /** Keeps an entry (emptied first when it has grown past its bound). */
  keep(id: string, entry: RowEntry): void {
    if (this.#known.size >= MAX_KNOWN) this.#known.clear();
    this.#known.set(id, entry);
  }

  /**
   * Keeps the records a commit left in Processing, at the commit's versionstamp: the outcome of
   * a running job is written by this same instance.
   */
  remember(
    batch: { change: Change; rows?: { row: Row }[] }[],
    versionstamp: string,
    key: (id: string) => Key,
  ): void {
    for (const { change, rows } of batch) {
      change.commits.forEach(({ id, record }, c) => {
        if (record.state !== "Processing") return;
        this.keep(id, { key: key(id), versionstamp, row: rows![c].row, record });
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
      const listed = this.#known.get(id);
      this.#known.delete(id);
      if (listed && listed.record?.version === expect) current.set(id, listed);
      else unread.push(id);
    }
    if (unread.length) {
      for (const [id, entry] of await read(unread)) current.set(id, entry);
    }
    return current;
  }
}
