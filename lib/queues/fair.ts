/**
 * @module
 * Choosing which ready jobs start under a queue's limits: partitions served round robin (not
 * in enqueue order), a full limiter skipped without writing anything, and the limiter records
 * recomputed from job records for `rebuild`. Pure.
 */

import type { QueueConfig } from "./config.ts";
import { admit, type LimitedJob, type LimiterState, type WaitReason } from "./limiter.ts";

/** The group of jobs without a partition key in the round robin. */
const NO_PARTITION = "";

/**
 * `jobs` (in claim order) reordered so that partitions take turns: one job of each partition in
 * key order, starting after `last`, then the second of each, and so on. Within a partition the
 * claim order stays; jobs without a key take their turn as one more partition.
 */
export function roundRobin<J extends { partition?: string }>(
  jobs: readonly J[],
  last?: string,
): J[] {
  const groups = new Map<string, J[]>();
  for (const job of jobs) {
    const key = job.partition ?? NO_PARTITION;
    const group = groups.get(key);
    if (group) group.push(job);
    else groups.set(key, [job]);
  }
  const keys = [...groups.keys()].sort();
  const start = last === undefined ? 0 : keys.findIndex((key) => key > last);
  const turn = start < 0 ? keys : [...keys.slice(start), ...keys.slice(0, start)];
  const out: J[] = [];
  for (let round = 0; out.length < jobs.length; round++) {
    for (const key of turn) {
      const job = groups.get(key)![round];
      if (job) out.push(job);
    }
  }
  return out;
}

/** What {@link chooseJobs} decided for a page of ready jobs. */
export interface Choice<J> {
  /** The jobs to claim, in order (at most `want`). */
  admitted: J[];
  /** The limiter record with their starts counted (what the claim commit writes). */
  state: LimiterState;
  /** Why each job examined and not admitted waits, by job id. */
  waiting: Map<string, WaitReason>;
}

/**
 * Picks up to `want` of `jobs` (ready, in claim order) that may start at `now`: partitions in
 * round robin, each job checked by {@link admit} against the state as updated by the jobs
 * admitted before it. A refused job is only reported in `waiting`; nothing is written for it.
 */
export function chooseJobs<J extends LimitedJob & { id: string }>(
  config: QueueConfig,
  state: LimiterState,
  jobs: readonly J[],
  how: { now: number; want: number },
): Choice<J> {
  const admitted: J[] = [];
  const waiting = new Map<string, WaitReason>();
  let current = state;
  const ordered = config.partition ? roundRobin(jobs, state.lastPartition) : [...jobs];
  for (const job of ordered) {
    if (admitted.length >= how.want) break;
    const verdict = admit(config, current, job, how.now);
    if (verdict.ok) {
      current = verdict.state;
      admitted.push(job);
    } else waiting.set(job.id, verdict.reason);
  }
  return { admitted, state: current, waiting };
}
