/**
 * @module
 * Group commit: changes submitted while a write is in flight are written together by the next
 * one. An idle system writes at once (one microtask later) unless a worker holds its writes for
 * a moment (see {@link GroupCommitter.hold}); a busy one amortizes each fsync-bound commit over
 * every change that arrived meanwhile.
 */

import type { AppendResult, Change, Storage } from "../storage/storage.ts";

interface Waiting {
  change: Change;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

/** Batches `storage.append` calls. */
export class GroupCommitter {
  #storage: Storage;
  #queue: Waiting[] = [];
  #writing = false;
  #held = false;
  #maxBatch: number;

  /** Batches writes to `storage`, at most `maxBatch` changes per append call. */
  constructor(storage: Storage, maxBatch = 500) {
    this.#storage = storage;
    this.#maxBatch = maxBatch;
  }

  /** Queues `change` for the next write and resolves with its outcome. */
  submit(change: Change): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ change, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Holds back writes not yet started until {@link GroupCommitter.release}: a worker holds
   * its outcomes while it gathers the slots that freed up, and releases them once its claim
   * is sent, so that the storage runs the claim first. A write in flight finishes.
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
    if (this.#writing || this.#held || !this.#queue.length) return;
    this.#writing = true;
    queueMicrotask(() => this.#drain());
  }

  /** Resolves once everything submitted so far has been written. */
  async flush(): Promise<void> {
    while (this.#writing || this.#queue.length) await new Promise((r) => setTimeout(r, 1));
  }

  async #drain(): Promise<void> {
    while (this.#queue.length && !this.#held) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      try {
        const results = await this.#storage.append(batch.map((w) => w.change));
        batch.forEach((w, i) => w.resolve(results[i]));
      } catch (error) {
        batch.forEach((w) => w.reject(error));
      }
    }
    this.#writing = false;
  }
}
