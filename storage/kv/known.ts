/**
 * @module
 * The versionstamp cache of the KV backend: records with their versionstamps, kept from a
 * listing or a commit for the write that usually follows, so that write need not read them
 * again. A stale entry costs nothing but a retry: its check fails and it is read afresh.
 */

import type { JobRecord } from "../../lib/job.ts";
import type { Change, Commit } from "../storage.ts";
import type { Key } from "./projections.ts";

/** Most entries kept (the map is emptied beyond). */
const MAX_KNOWN = 10_000;

/** Records known at a versionstamp: ready-queue and due listings, and this instance's claims. */
export class KnownRecords {
  #known = new Map<string, Deno.KvEntry<JobRecord>>();

  /** Keeps an entry (emptied first when it has grown past its bound). */
  keep(id: string, entry: Deno.KvEntry<JobRecord>): void {
    if (this.#known.size >= MAX_KNOWN) this.#known.clear();
    this.#known.set(id, entry);
  }

  /**
   * Keeps the records a commit left in Processing, at the commit's versionstamp: the outcome of
   * a running job is written by this same instance.
   */
  remember(batch: { change: Change }[], versionstamp: string, key: (id: string) => Key): void {
    for (const { change } of batch) {
      for (const { id, record } of change.commits) {
        if (record.state !== "Processing") continue;
        this.keep(id, { key: key(id), value: record, versionstamp });
      }
    }
  }

  /**
   * The stored entries the commits expect: those known at the expected version from here, the
   * rest through `read`. Every entry is taken out (a write follows that changes it).
   */
  async current(
    commits: readonly Commit[],
    read: (ids: string[]) => Promise<Map<string, Deno.KvEntryMaybe<JobRecord>>>,
  ): Promise<Map<string, Deno.KvEntryMaybe<JobRecord>>> {
    const current = new Map<string, Deno.KvEntryMaybe<JobRecord>>();
    const unread: string[] = [];
    for (const { id, expect } of commits) {
      const listed = this.#known.get(id);
      this.#known.delete(id);
      if (listed && listed.value.version === expect) current.set(id, listed);
      else unread.push(id);
    }
    if (unread.length) {
      for (const [id, entry] of await read(unread)) current.set(id, entry);
    }
    return current;
  }
}
