/**
 * @module
 * Due Scheduled jobs, for the claim loop: when to read them again (the earliest due time seen,
 * and at least every minimum poll interval), and promoting them to Enqueued, or straight to
 * Processing into free slots when their queue was just found empty.
 */

import type { Storage } from "../../storage/storage.ts";
import { appendCommit } from "../changes.ts";
import type { NewEvent } from "../events.ts";
import type { GroupCommitter } from "../group_commit.ts";
import type { JobRecord } from "../job.ts";
import type { WorkerConfig } from "./config.ts";
import type { Pool } from "./pool.ts";
import type { Runner } from "./run.ts";
import { leaseAt, processingEvent } from "./claim_commits.ts";

/** Most Scheduled jobs one turn of the claim loop promotes. */
const DUE_PAGE = 200;

/** The due jobs of one claim loop: when to look, what was seen, promoting them. */
export class DueJobs {
  /** The next due time the last read of due jobs saw. */
  nextDue = Infinity;
  /** Whether a minimum poll interval has passed since due jobs were last read. */
  stale = true;
  #timer?: ReturnType<typeof setTimeout>;
  #config: WorkerConfig;
  #storage: Storage;
  #parts: { committer: GroupCommitter; pool: Pool; runner: Runner };

  /** Due jobs of `storage`, promoted through `parts.committer` into `parts.pool`. */
  constructor(
    config: WorkerConfig,
    storage: Storage,
    parts: { committer: GroupCommitter; pool: Pool; runner: Runner },
  ) {
    this.#config = config;
    this.#storage = storage;
    this.#parts = parts;
  }

  /** Whether due jobs are to be read now (`woken`: a wake-up arrived). */
  check(woken: boolean): boolean {
    return woken || this.#config.now() >= this.nextDue || this.stale;
  }

  /** A read starts: the turns overlapping it do not read again. */
  reading(): void {
    [this.stale, this.nextDue] = [false, Infinity];
  }

  /** Due jobs were just read: the next read waits for `next` or a minimum poll interval. */
  read(next: number): void {
    this.nextDue = next;
    const interval = this.#config.minPollIntervalMs;
    if (interval === 0) return;
    this.stale = false;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.stale = true, interval);
  }

  /** Stops the interval's timer. */
  stop(): void {
    clearTimeout(this.#timer);
  }

  /** Scheduled jobs due now, and when the next one not yet due is. */
  async load(): Promise<{ ready: JobRecord[]; next: number }> {
    const now = this.#config.now();
    const horizon = now + this.#config.pollIntervalMs;
    const due = await this.#storage.due({ state: "Scheduled", before: horizon, limit: DUE_PAGE });
    const ready = due.filter((job) => (job.runAt ?? 0) <= now);
    // A full page of due jobs may hide more of them: look again on the next turn.
    const next = due.length === DUE_PAGE && ready.length === due.length
      ? now
      : due.find((job) => (job.runAt ?? 0) > now)?.runAt ?? Infinity;
    return { ready, next };
  }

  /**
   * Moves due jobs to Enqueued. `drained` are the queues the claim of the same turn found empty
   * (all it asked for, or none): due jobs of those queues go straight to Processing in free
   * slots, in the same commit, in claim order (queue order, then priority, then due time). They
   * would be claimed next anyway, a read and a write later. Jobs promoted only are claimed by
   * the next turn, which follows at once since promoting counts as progress.
   */
  async promote(due: JobRecord[], drained: readonly string[]): Promise<number> {
    const { committer, pool, runner } = this.#parts;
    const now = this.#config.now();
    const lease = leaseAt(this.#config, now);
    const rank = new Map(drained.map((queue, i) => [queue, i]));
    const direct = new Set(
      due.filter((job) => rank.has(job.queue))
        .sort((a, b) =>
          rank.get(a.queue)! - rank.get(b.queue)! || b.priority - a.priority ||
          (a.runAt ?? 0) - (b.runAt ?? 0)
        )
        .slice(0, pool.free),
    );
    const commits = due.map((job) => {
      const events: NewEvent[] = [{
        type: "state",
        at: now,
        state: "Enqueued",
        reason: job.retryOf ? `retry after attempt ${job.retryOf}` : "due",
      }];
      if (!direct.has(job)) return appendCommit(job, events);
      return appendCommit(job, [...events, processingEvent(now, lease)], lease);
    });
    const results = await Promise.all(
      commits.map((commit) => committer.submit({ commits: [commit] })),
    );
    results.forEach((result, i) => {
      if (result.ok && commits[i].record.state === "Processing") {
        runner.start(commits[i].record, commits[i].before);
      }
    });
    return results.filter((result) => result.ok).length;
  }
}
