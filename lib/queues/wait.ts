/**
 * @module
 * Why a waiting job waits and how much of a queue's limits is in use, read from what the claim
 * commits keep: the queue's Processing gauge, its Processing jobs' partitions and its rate
 * windows (settings `rate:<queue>`).
 */

import type { Counts, Storage } from "../../storage/storage.ts";
import type { JobRecord } from "../job.ts";
import type { QueueConfig } from "./config.ts";
import {
  admit,
  emptyLimiter,
  type LimiterState,
  type LimiterUse,
  limiterUse,
  type LimitUse,
} from "./limiter.ts";
import type { RateWindow } from "./rate.ts";

/** The settings record id of a queue's rate window (written by the claims of its jobs). */
export function rateWindowId(queue: string): string {
  return `rate:${queue}`;
}

/** Processing jobs read per page when counting a partitioned queue's running jobs. */
const RUNNING_PAGE = 500;

/** Jobs of `queue` Processing now, by partition key (a scan of the Processing jobs). */
export async function runningByPartition(
  storage: Storage,
  queue: string,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let cursor: string | undefined;
  do {
    const page = await storage.list({ state: "Processing", limit: RUNNING_PAGE, cursor });
    for (const job of page.jobs) {
      const key = job.options.partition;
      if (job.queue !== queue || job.state !== "Processing" || key === undefined) continue;
      out.set(key, (out.get(key) ?? 0) + 1);
    }
    cursor = page.cursor;
  } while (cursor);
  return out;
}

/**
 * A queue's limiter state now: its Processing jobs and its rate window, and with `partition`
 * that partition's use (its running jobs and its rate window).
 */
export async function limiterStateOf(
  storage: Storage,
  queue: string,
  how: { counts?: Counts; partition?: string } = {},
): Promise<LimiterState> {
  const { partition } = how;
  const [gauges, window, running] = await Promise.all([
    how.counts ?? storage.counts(),
    storage.settings.get(rateWindowId(queue)),
    partition === undefined ? undefined : runningByPartition(storage, queue),
  ]);
  const partitions: Record<string, LimitUse> = {};
  if (partition !== undefined) {
    const rate = (window?.partitions as Record<string, RateWindow> | undefined)?.[partition];
    partitions[partition] = { running: running?.get(partition) ?? 0, ...rate && { rate } };
  }
  return {
    ...emptyLimiter(),
    running: gauges.queues[queue]?.Processing ?? 0,
    rate: window?.window as RateWindow | undefined,
    partitions,
  };
}

/** Current use of `config`'s limits for `queue` at `now`. */
export async function useOf(
  storage: Storage,
  queue: string,
  how: { config: QueueConfig; now: number; counts?: Counts },
): Promise<LimiterUse> {
  const state = await limiterStateOf(storage, queue, { counts: how.counts });
  return limiterUse(how.config, state, how.now);
}

/**
 * Why an Enqueued job is not started now under its queue's limits and its partition's, in
 * words (e.g. "queue mail at its concurrency limit 5", "partition acme at its limit: 1 running
 * at once in queue mail"), or undefined when they would let it start.
 */
export async function waitText(
  storage: Storage,
  job: JobRecord,
  how: { config: QueueConfig; now: number },
): Promise<string | undefined> {
  if (job.state !== "Enqueued") return undefined;
  const { concurrency, rateLimit } = how.config;
  const partition = how.config.partition ? job.options.partition : undefined;
  if (concurrency === undefined && rateLimit === undefined && partition === undefined) {
    return undefined;
  }
  const state = await limiterStateOf(storage, job.queue, { partition });
  const verdict = admit(how.config, state, { queue: job.queue, partition }, how.now);
  return verdict.ok ? undefined : verdict.reason.text;
}
