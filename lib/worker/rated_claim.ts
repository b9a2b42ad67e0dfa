/**
 * @module
 * Claims of a rate-limited queue: the queue's rate window (settings record `rate:<queue>`) is
 * read with the ready jobs, lib admits what fits, and the window counting those starts is
 * written by compare-and-set in the same atomic write as the claims. A throttled job writes
 * nothing.
 */

import type { Change, Commit, RecurringRecord, Storage } from "../../storage/storage.ts";
import type { GroupCommitter } from "../group_commit.ts";
import type { JobRecord } from "../job.ts";
import type { QueueConfig } from "../queues/config.ts";
import { chooseJobs } from "../queues/fair.ts";
import { emptyLimiter } from "../queues/limiter.ts";
import type { RateWindow } from "../queues/rate.ts";
import { rateWindowId } from "../queues/wait.ts";

/** What one rated claim did: the commits applied, and when a slot frees if none fitted. */
export interface RatedClaim {
  /** The claims that applied. */
  claimed: Commit[];
  /** Someone else changed the window or took a job meanwhile: call again soon. */
  contended: boolean;
  /** Ms until the window admits a start again, when it admitted none. */
  retryInMs?: number;
}

/** Claims up to `want` ready jobs of `queue` under its rate limit (and its cap, if any). */
export async function claimRated(
  parts: {
    storage: Storage;
    committer: GroupCommitter;
    build: (job: JobRecord) => Commit | null;
    now: number;
  },
  how: { queue: string; config: QueueConfig; want: number; cap?: number },
): Promise<RatedClaim> {
  const { storage, committer, build, now } = parts;
  const id = rateWindowId(how.queue);
  const [stored, page] = await Promise.all([
    storage.settings.get(id),
    storage.list({ queue: how.queue, limit: how.want }),
  ]);
  const expect = stored?.version ?? 0;
  const state = { ...emptyLimiter(), rate: stored?.window as RateWindow | undefined };
  const config = { rateLimit: how.config.rateLimit };
  const jobs = page.jobs.filter((job) => job.state === "Enqueued");
  // A cap refuses a change of several claims whole: the second try takes one job only.
  for (const want of [how.want, 1]) {
    const choice = chooseJobs(config, state, jobs, { now, want });
    const commits = choice.admitted.map(build).filter((c): c is Commit => c !== null);
    if (!commits.length) {
      const reason = [...choice.waiting.values()][0];
      const retryInMs = reason?.limit === "rate" ? reason.retryInMs : undefined;
      return { claimed: [], contended: false, retryInMs };
    }
    const record: RecurringRecord = { id, version: expect + 1, window: choice.state.rate };
    const change: Change = { commits, setting: { record, expect } };
    if (how.cap !== undefined) change.cap = { queue: how.queue, max: how.cap };
    const result = await committer.submit(change);
    if (result.ok) return { claimed: commits, contended: false };
    if (!result.limited || commits.length === 1) {
      return { claimed: [], contended: !result.limited };
    }
  }
  return { claimed: [], contended: false };
}
