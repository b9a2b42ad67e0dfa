/**
 * @module
 * Claims of a queue with a rate limit or per-partition limits: the queue's limiter record
 * (settings `rate:<queue>`: its rate window and its partitions' windows) is read with the ready
 * jobs, lib admits what fits, and the record counting those starts is written by compare-and-set
 * in the same atomic write as the claims. A job that does not fit writes nothing.
 */

import type { Change, Commit, RecurringRecord, Storage } from "../../storage/storage.ts";
import type { GroupCommitter } from "../group_commit.ts";
import type { JobRecord } from "../job.ts";
import type { QueueConfig } from "../queues/config.ts";
import { chooseJobs } from "../queues/fair.ts";
import { instruments } from "../telemetry/metrics.ts";
import { emptyLimiter, type LimiterState, type LimitUse } from "../queues/limiter.ts";
import { isExpired } from "../expiry.ts";
import type { RateWindow } from "../queues/rate.ts";
import { rateWindowId, runningByPartition } from "../queues/wait.ts";

/** Ready jobs read per claim of a partitioned queue: partitions beyond them wait their turn. */
export const PARTITION_WINDOW = 1_000;

/** What one rated claim did: the commits applied, and when a slot frees if none fitted. */
export interface RatedClaim {
  /** The claims that applied. */
  claimed: Commit[];
  /** Someone else changed the window or took a job meanwhile: call again soon. */
  contended: boolean;
  /** Ms until the window admits a start again, when it admitted none. */
  retryInMs?: number;
}

/** Claims up to `want` ready jobs of `queue` under its limits (and its cap, if any). */
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
  const { queue, config: { partition } } = how;
  const id = rateWindowId(queue);
  const window = partition ? Math.max(how.want, PARTITION_WINDOW) : how.want;
  // The record is read before the running jobs: every claim of the queue bumps its version, so
  // a claim made after this read and missed by the count below fails the compare-and-set.
  const [stored, page] = await Promise.all([
    storage.settings.get(id),
    storage.list({ queue, limit: window }),
  ]);
  const running = partition?.concurrency !== undefined
    ? await runningByPartition(storage, queue)
    : new Map<string, number>();
  const expect = stored?.version ?? 0;
  const state = {
    ...emptyLimiter(),
    rate: stored?.window as RateWindow | undefined,
    partitions: partitionUse(stored?.partitions, running),
    lastPartition: stored?.lastPartition as string | undefined,
  };
  // An expired job is deleted, not claimed: it takes no slot and no start in the windows.
  const expired = await deleteExpired(committer, build, page.jobs, now);
  const jobs = page.jobs.filter((job) => job.state === "Enqueued" && !isExpired(job.options, now))
    .map((job) => ({ id: job.id, queue, partition: job.options.partition, job }));
  const claimed = await claimAdmitted(parts, how, { expect, state, jobs });
  return { ...claimed, claimed: [...expired, ...claimed.claimed] };
}

/** Claims what `state` admits of `jobs` with the record counting their starts, in one change. */
async function claimAdmitted(
  parts: { committer: GroupCommitter; build: (job: JobRecord) => Commit | null; now: number },
  how: { queue: string; config: QueueConfig; want: number; cap?: number },
  read: {
    expect: number;
    state: LimiterState;
    jobs: { id: string; queue: string; partition?: string; job: JobRecord }[];
  },
): Promise<RatedClaim> {
  const { committer, build, now } = parts;
  const { queue, config: { rateLimit, partition } } = how;
  const { expect, state, jobs } = read;
  const id = rateWindowId(queue);
  // A cap refuses a change of several claims whole: the second try takes one job only.
  for (const want of [how.want, 1]) {
    const choice = chooseJobs({ rateLimit, partition }, state, jobs, { now, want });
    const commits = choice.admitted.map((c) => build(c.job)).filter((c): c is Commit => !!c);
    if (!commits.length) {
      if (jobs.length) limited(queue, "refused", 1);
      return { claimed: [], contended: false, retryInMs: retryIn(choice) };
    }
    const record: RecurringRecord = {
      id,
      version: expect + 1,
      window: choice.state.rate,
      ...(partition ? partitionRecord(choice.state) : {}),
    };
    const change: Change = { commits, setting: { record, expect } };
    if (how.cap !== undefined) change.cap = { queue, max: how.cap };
    const result = await committer.submit(change);
    if (result.ok) {
      limited(queue, "admitted", commits.length);
      return { claimed: commits, contended: false };
    }
    if (!result.limited || commits.length === 1) {
      return { claimed: [], contended: !result.limited };
    }
  }
  return { claimed: [], contended: false };
}

/** Counts a limiter's decision: jobs it admitted, or a claim turn it refused with jobs waiting. */
function limited(queue: string, decision: "admitted" | "refused", n: number): void {
  instruments().limiter.add(n, {
    "messaging.destination.name": queue,
    "taskflow.limiter.decision": decision,
  });
}

/** Deletes the expired ones of `jobs` (no cap, no window: they never start); the commits applied. */
async function deleteExpired(
  committer: GroupCommitter,
  build: (job: JobRecord) => Commit | null,
  jobs: readonly JobRecord[],
  now: number,
): Promise<Commit[]> {
  const commits = jobs.filter((job) => job.state === "Enqueued" && isExpired(job.options, now))
    .map(build).filter((c): c is Commit => c?.record.state === "Deleted");
  const results = await Promise.all(commits.map((c) => committer.submit({ commits: [c] })));
  return commits.filter((_, i) => results[i].ok);
}

/** The partitions' use: running counts from the jobs, rate windows from the stored record. */
function partitionUse(
  stored: unknown,
  running: ReadonlyMap<string, number>,
): Record<string, LimitUse> {
  const out: Record<string, LimitUse> = {};
  const windows = (stored ?? {}) as Record<string, RateWindow>;
  for (const [key, rate] of Object.entries(windows)) out[key] = { running: 0, rate };
  for (const [key, count] of running) (out[key] ??= { running: 0 }).running = count;
  return out;
}

/** What the record keeps of the partitions: their rate windows, and the last one served. */
function partitionRecord(
  state: { partitions: Record<string, LimitUse>; lastPartition?: string },
): Record<string, unknown> {
  const partitions: Record<string, RateWindow> = {};
  for (const [key, use] of Object.entries(state.partitions)) {
    if (use.rate) partitions[key] = use.rate;
  }
  return { partitions, lastPartition: state.lastPartition };
}

/** The soonest a refused rate slot frees (a concurrency slot frees when a job ends). */
function retryIn(
  choice: { waiting: Map<string, { limit: string; retryInMs?: number }> },
): number | undefined {
  let soonest: number | undefined;
  for (const reason of choice.waiting.values()) {
    if (reason.limit === "rate") soonest = Math.min(soonest ?? Infinity, reason.retryInMs!);
  }
  return soonest;
}
