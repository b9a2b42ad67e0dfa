/**
 * @module
 * Why a waiting job waits and how much of a queue's limits is in use, read from what the claim
 * commits keep: the queue's Processing gauge and its rate window (settings `rate:<queue>`).
 */

import type { Counts, Storage } from "../../storage/storage.ts";
import type { JobRecord } from "../job.ts";
import type { QueueConfig } from "./config.ts";
import { admit, emptyLimiter, type LimiterState, type LimiterUse, limiterUse } from "./limiter.ts";
import type { RateWindow } from "./rate.ts";

/** The settings record id of a queue's rate window (written by the claims of its jobs). */
export function rateWindowId(queue: string): string {
  return `rate:${queue}`;
}

/** A queue's limiter state now: its Processing jobs and its rate window. */
export async function limiterStateOf(
  storage: Storage,
  queue: string,
  counts?: Counts,
): Promise<LimiterState> {
  const [gauges, window] = await Promise.all([
    counts ?? storage.counts(),
    storage.settings.get(rateWindowId(queue)),
  ]);
  return {
    ...emptyLimiter(),
    running: gauges.queues[queue]?.Processing ?? 0,
    rate: window?.window as RateWindow | undefined,
  };
}

/** Current use of `config`'s limits for `queue` at `now`. */
export async function useOf(
  storage: Storage,
  queue: string,
  how: { config: QueueConfig; now: number; counts?: Counts },
): Promise<LimiterUse> {
  const state = await limiterStateOf(storage, queue, how.counts);
  return limiterUse(how.config, state, how.now);
}

/**
 * Why an Enqueued job is not started now under its queue's global limits, in words (e.g.
 * "queue mail at its concurrency limit 5"), or undefined when they would let it start.
 */
export async function waitText(
  storage: Storage,
  job: JobRecord,
  how: { config: QueueConfig; now: number },
): Promise<string | undefined> {
  if (job.state !== "Enqueued") return undefined;
  const { concurrency, rateLimit } = how.config;
  if (concurrency === undefined && rateLimit === undefined) return undefined;
  const state = await limiterStateOf(storage, job.queue);
  const verdict = admit({ concurrency, rateLimit }, state, { queue: job.queue }, how.now);
  return verdict.ok ? undefined : verdict.reason.text;
}
