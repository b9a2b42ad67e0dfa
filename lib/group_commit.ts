/**
 * @module
 * Group commit: changes submitted while writes are in flight are written together by the next
 * one. An idle system writes at once (one microtask later) unless a worker holds its writes for
 * a moment (see {@link GroupCommitter.hold}); a busy one amortizes each fsync-bound commit over
 * every change that arrived meanwhile.
 *
 * Up to `pipeline` writes may be in flight at once (a storage that runs its calls in order on
 * one connection declares how many, see `Storage.appendPipeline`), so that the storage works on
 * one group while the process builds the next; with one, each side waits for the other.
 * Callers that all resubmit when one write settles would stay one cohort, so a queue of at
 * least two `minGroup`s goes out as several writes: their answers come back one after the other
 * and the cohorts take turns. Writes in flight never share a job: a change touching a job of
 * one waits, with everything submitted after it, until that write has settled, so the changes
 * of one job are written in submission order.
 */

import type { AppendResult, Change, Storage } from "../storage/storage.ts";

interface Waiting {
  change: Change;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
  /** Called once the write holding the change has been handed to the storage. */
  sent?: () => void;
}

/** How a {@link GroupCommitter} groups its writes. */
export interface GroupCommitOptions {
  /** Most changes in one append call (default 500). */
  maxBatch?: number;
  /** Most append calls in flight at once (default 1: one group at a time). */
  pipeline?: number;
  /** Fewest changes in each of the writes a queue is split into (default 16). */
  minGroup?: number;
}

/** Batches `storage.append` calls. */
export class GroupCommitter {
  #storage: Storage;
  #queue: Waiting[] = [];
  /** Append calls in flight. */
  #inFlight = 0;
  /** A write is scheduled for the next microtask. */
  #scheduled = false;
  /** Jobs of the writes in flight, with how many of those writes touch each. */
  #busyJobs = new Map<string, number>();
  #held = false;
  #maxBatch: number;
  #pipeline: number;
  #minGroup: number;
  #settled: Array<() => void> = [];

  /** Batches writes to `storage` (see {@link GroupCommitOptions}). */
  constructor(storage: Storage, options: GroupCommitOptions = {}) {
    this.#storage = storage;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#pipeline = Math.max(1, options.pipeline ?? 1);
    this.#minGroup = Math.max(1, options.minGroup ?? 16);
  }

  /**
   * Queues `change` for the next write and resolves with its outcome; `sent` is called once
   * that write has been handed to the storage (a later call on an ordered storage runs after it).
   */
  submit(change: Change, sent?: () => void): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ change, resolve, reject, sent });
      this.#schedule();
    });
  }

  /**
   * Holds back writes not yet started until {@link GroupCommitter.release}: a worker holds
   * its outcomes while it gathers the slots that freed up, and releases them once its claim
   * is sent, so that the storage runs the claim first. Writes in flight finish.
   */
  hold(): void {
    this.#held = true;
  }

  /** Ends {@link GroupCommitter.hold}: what was queued meanwhile is written now. */
  release(): void {
    this.#held = false;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#held || !this.#queue.length) return;
    if (this.#inFlight >= this.#pipeline) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#write();
    });
  }

  /** Resolves once everything submitted so far has been written. */
  async flush(): Promise<void> {
    while (this.#inFlight || this.#queue.length) {
      if (this.#inFlight) await new Promise<void>((resolve) => this.#settled.push(resolve));
      else await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Starts one write of what is queued, if one may start now, and schedules the next. */
  #write(): void {
    if (this.#held || this.#inFlight >= this.#pipeline) return;
    const batch = this.#take();
    if (!batch.length) return;
    const jobs: string[] = [];
    for (const waiting of batch) {
      for (const commit of waiting.change.commits) jobs.push(commit.id);
    }
    if (this.#pipeline > 1) {
      for (const id of jobs) this.#busyJobs.set(id, (this.#busyJobs.get(id) ?? 0) + 1);
    }
    this.#inFlight++;
    let write: Promise<AppendResult[]>;
    try {
      write = this.#storage.append(batch.map((w) => w.change));
    } catch (error) {
      write = Promise.reject(error);
    }
    for (const waiting of batch) waiting.sent?.();
    write.then(
      (results) => batch.forEach((w, i) => w.resolve(results[i])),
      (error) => batch.forEach((w) => w.reject(error)),
    ).finally(() => {
      if (this.#pipeline > 1) {
        for (const id of jobs) {
          const left = this.#busyJobs.get(id)! - 1;
          if (left) this.#busyJobs.set(id, left);
          else this.#busyJobs.delete(id);
        }
      }
      this.#inFlight--;
      const settled = this.#settled;
      this.#settled = [];
      for (const wake of settled) wake();
      this.#schedule();
    });
    // More queued than this write took: the next goes out behind it.
    this.#schedule();
  }

  /**
   * The next group, oldest first: its share of the queue split over the free writes (each at
   * least `minGroup` changes, at most `maxBatch`), ending before the first change that touches
   * a job of a write in flight (it and those behind it wait for that write).
   */
  #take(): Waiting[] {
    const queued = this.#queue.length;
    const free = this.#pipeline - this.#inFlight;
    const parts = Math.max(1, Math.min(free, Math.floor(queued / this.#minGroup)));
    const limit = Math.min(this.#maxBatch, Math.ceil(queued / parts));
    let count = limit;
    if (this.#busyJobs.size > 0) {
      count = 0;
      while (count < limit) {
        const commits = this.#queue[count].change.commits;
        if (commits.some((commit) => this.#busyJobs.has(commit.id))) break;
        count++;
      }
    }
    return this.#queue.splice(0, count);
  }
}
