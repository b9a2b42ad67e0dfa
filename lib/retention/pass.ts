/**
 * @module
 * One pruning pass over the finished jobs: read them oldest first, decide (decide.ts), hand
 * each slice to the archive, then remove it in one `storage.remove` call. No leader: `remove`
 * is compare-and-set on each job's version, so two pruners racing remove each job once.
 */

import type { Page, Storage } from "../../storage/storage.ts";
import type { BatchRecord } from "../batch.ts";
import type { JobRecord } from "../job.ts";
import type { State } from "../states.ts";
import {
  blockedBy,
  countExcess,
  dependantIds,
  type Dependants,
  type Phase,
  removable,
} from "./decide.ts";
import {
  type ArchivedJob,
  FINAL_KEYS,
  type FinalKey,
  type ResolvedRetention,
  type RetentionPolicy,
} from "./policy.ts";

/**
 * What a prune did (or, with `dryRun`, would do).
 *
 * @example
 * ```ts
 * import { TaskFlow } from "../mod.ts";
 * const tf = await TaskFlow.open("memory:");
 * const report = await tf.prune({ dryRun: true });
 * console.log(report.removed.succeeded, report.ids.length, report.kept);
 * await tf.close();
 * ```
 */
export interface PruneReport {
  /** Jobs removed per final state (with `dryRun`: that would be removed). */
  removed: { succeeded: number; failed: number; deleted: number };
  /** Their ids. */
  ids: string[];
  /** True when nothing was removed on purpose. */
  dryRun: boolean;
  /** Expired jobs kept because something still depends on them (a waiting continuation, ...). */
  kept: number;
  /** The pass stopped at its page or removal budget with expired jobs left to look at. */
  more: boolean;
}

/** Where a pruner's scans resume on its next pass (kept by a worker between passes). */
export type ScanCursors = Map<string, string | undefined>;

/** Options of {@link prunePass}. */
export interface PassOptions {
  /** The policy applied. */
  policy: ResolvedRetention;
  /** Receives each slice before it is removed. */
  archive?: RetentionPolicy["archive"];
  /** The time expiry is judged at (ms since epoch). */
  now: number;
  /** Decide and report, remove nothing (and archive nothing). */
  dryRun?: boolean;
  /** Most jobs removed in the pass. */
  limit: number;
  /** Pages read per scan and state before the pass moves on (bounds a pass's reads). */
  pages: number;
  /** Pages the sweep for jobs' own shorter keeps reads per state (default `pages`). */
  sweepPages?: number;
  /** Scan positions carried from the previous pass (a worker's); absent: start at the oldest. */
  cursors?: ScanCursors;
}

const STATE_OF: Record<FinalKey, "Succeeded" | "Failed" | "Deleted"> = {
  succeeded: "Succeeded",
  failed: "Failed",
  deleted: "Deleted",
};

/** Runs one pass; throws what the archive threw (that slice and the rest are left for later). */
export async function prunePass(storage: Storage, options: PassOptions): Promise<PruneReport> {
  const report: PruneReport = {
    removed: { succeeded: 0, failed: 0, deleted: 0 },
    ids: [],
    dryRun: Boolean(options.dryRun),
    kept: 0,
    more: false,
  };
  const pass = new Pass(storage, options, report);
  for (const key of FINAL_KEYS) {
    const rule = options.policy[key];
    if (rule !== false && rule.maxAgeMs !== undefined) {
      await pass.scan(key, "age", options.now - rule.maxAgeMs);
    }
    if (rule !== false && rule.maxCount !== undefined) {
      const counts = await storage.counts();
      const inState = counts.states[STATE_OF[key] as State] - pass.decided(key);
      const excess = countExcess(inState, rule);
      if (excess > 0) await pass.scan(key, "count", options.now, excess);
    }
    // Jobs whose own keep is shorter than the policy's lie beyond the age scan's bound.
    await pass.scan(key, "own", options.now, Infinity, options.sweepPages ?? options.pages);
  }
  return report;
}

/** The state of one pass. */
class Pass {
  #storage: Storage;
  #options: PassOptions;
  #report: PruneReport;
  /** Ids decided in this pass (a dry run sees them again in a later phase). */
  #seen = new Set<string>();
  #batches = new Map<string, BatchRecord | null>();

  constructor(storage: Storage, options: PassOptions, report: PruneReport) {
    this.#storage = storage;
    this.#options = options;
    this.#report = report;
  }

  /** Jobs of `key` removed (or found removable) so far in this pass. */
  decided(key: FinalKey): number {
    return this.#options.dryRun ? this.#report.removed[key] : 0;
  }

  /**
   * Reads jobs of `key` that entered their state at or before `before`, oldest first, and
   * removes those `phase` allows, at most `quota` (and the pass's limit).
   */
  async scan(
    key: FinalKey,
    phase: Phase,
    before: number,
    quota = Infinity,
    pages = this.#options.pages,
  ): Promise<void> {
    const { policy, now } = this.#options;
    const { maxRemovals } = this.#storage.limits;
    const slot = `${key}:${phase}`;
    let cursor = this.#options.cursors?.get(slot);
    let taken = 0;
    for (let page = 0;; page++) {
      const room = Math.min(quota - taken, this.#room());
      if (room <= 0) {
        if (this.#room() <= 0) this.#report.more = true;
        return;
      }
      if (page >= pages) {
        // The sweep for own keeps rotates through every finished job: its budget is no backlog.
        if (phase !== "own") this.#report.more = true;
        return;
      }
      const read: Page = await this.#storage.finished({
        state: STATE_OF[key],
        before,
        cursor,
        limit: maxRemovals,
      });
      const fresh = read.jobs.filter((r) => !this.#seen.has(r.id));
      const wanted = fresh.filter((r) => removable(r, phase, policy, now));
      const deps = await this.#dependants(wanted);
      const slice: JobRecord[] = [];
      let full = false;
      for (const record of wanted) {
        if (slice.length >= room) {
          full = true;
          break;
        }
        if (blockedBy(record, deps)) this.#report.kept++;
        else slice.push(record);
        this.#seen.add(record.id);
      }
      taken += await this.#removeSlice(key, slice);
      // A page left half done is read again next time, so that no older job is skipped.
      if (full) {
        if (this.#room() <= 0) this.#report.more = true;
        return;
      }
      cursor = read.cursor;
      this.#options.cursors?.set(slot, cursor);
      if (!cursor) return;
    }
  }

  /** Jobs the pass may still remove. */
  #room(): number {
    const { succeeded, failed, deleted } = this.#report.removed;
    return this.#options.limit - (succeeded + failed + deleted);
  }

  /** Archives `slice` (when an archive is set), then removes it; returns how many went. */
  async #removeSlice(key: FinalKey, slice: JobRecord[]): Promise<number> {
    if (!slice.length) return 0;
    if (this.#options.dryRun) {
      this.#report.removed[key] += slice.length;
      this.#report.ids.push(...slice.map((r) => r.id));
      return slice.length;
    }
    if (this.#options.archive) {
      const read: ArchivedJob[] = await Promise.all(
        slice.map(async (record) => ({ record, events: await this.#storage.events(record.id) })),
      );
      // A job with no log left was removed meanwhile by another pruner, which archived it: it
      // is neither archived again (without its log) nor counted here.
      const jobs = read.filter((job) => job.events.length > 0);
      if (!jobs.length) return 0;
      slice = jobs.map((job) => job.record);
      // Nothing is removed unless the archive resolved: losing the log must be a choice.
      await this.#options.archive(jobs);
    }
    const { removed } = await this.#storage.remove(
      slice.map(({ id, version }) => ({ id, version })),
    );
    this.#report.removed[key] += removed.length;
    this.#report.ids.push(...removed);
    return removed.length;
  }

  /** The continuations and batches `records` depend on being finished. */
  async #dependants(records: JobRecord[]): Promise<Dependants> {
    // The batches not read yet in this pass, read together (one round trip on Redis).
    const unread = [
      ...new Set(records.map((r) => r.batchId).filter((id): id is string => id !== undefined)),
    ].filter((id) => !this.#batches.has(id));
    const read = await Promise.all(unread.map((id) => this.#storage.batches.get(id)));
    unread.forEach((id, i) => this.#batches.set(id, read[i] as BatchRecord | null));
    const ids = new Set<string>();
    for (const record of records) {
      // Most jobs have neither continuations nor dependents: no list is made for them.
      if (record.continuations.length || record.dependents?.length) {
        for (const id of dependantIds(record)) ids.add(id);
      }
      const thenId = record.batchId && this.#batches.get(record.batchId)?.thenId;
      if (thenId) ids.add(thenId);
    }
    const list = [...ids];
    const found = list.length ? await this.#storage.getMany(list) : [];
    return {
      jobs: new Map(list.map((id, i) => [id, found[i]])),
      batches: this.#batches,
    };
  }
}
