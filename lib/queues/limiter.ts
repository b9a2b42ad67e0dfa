/**
 * @module
 * The limiter decisions of a queue, pure and shared by every backend: whether a job may start
 * now under the queue's limits ({@link admit}), what a finished or reaped job gives back
 * ({@link release}), and why a waiting job waits. Backends store the {@link LimiterState} and
 * check it by compare-and-set in the claim commit; they decide nothing themselves.
 */

import { type QueueConfig, type RateLimit, rateText } from "./config.ts";
import { type RateWindow, startsInWindow, takeSlot } from "./rate.ts";

/** What one limit holds: jobs running now and recent starts. */
export interface LimitUse {
  /** Jobs running (claimed, not yet finished or reaped). */
  running: number;
  /** Recent starts, kept while the queue (or partition) has a rate limit. */
  rate?: RateWindow;
}

/** The limiter record of one queue: its own use and each partition's. */
export interface LimiterState extends LimitUse {
  /** Use per partition key; a partition with nothing running and no recent start is absent. */
  partitions: Record<string, LimitUse>;
  /** The partition served last, where the round robin resumes. */
  lastPartition?: string;
}

/** The job a decision is about: its queue and partition key. */
export interface LimitedJob {
  /** The job's queue. */
  queue: string;
  /** The job's partition key, when it has one. */
  partition?: string;
}

/** Why a job waits: which limit is full, as data and as words. */
export type WaitReason =
  & {
    /** The queue. */
    queue: string;
    /** The words shown on the job page, e.g. "queue mail at its concurrency limit 5". */
    text: string;
  }
  & (
    | { limit: "concurrency"; max: number; partition?: string }
    | { limit: "rate"; rate: RateLimit; retryInMs: number; partition?: string }
  );

/** The verdict of {@link admit}. */
export type Admission =
  | { ok: true; state: LimiterState }
  | { ok: false; reason: WaitReason };

/** A limiter record with nothing running and no recent starts. */
export function emptyLimiter(): LimiterState {
  return { running: 0, partitions: {} };
}

/**
 * May `job` start at `now` under `config`? When yes, the state with its start counted (running
 * and the rate windows); when no, why — the queue's limits are checked before the partition's.
 *
 * @example
 * ```ts
 * import { admit, emptyLimiter } from "./limiter.ts";
 * const config = { concurrency: 1 };
 * const first = admit(config, emptyLimiter(), { queue: "mail" }, 0);
 * if (first.ok) {
 *   const second = admit(config, first.state, { queue: "mail" }, 0);
 *   console.log(second.ok ? "" : second.reason.text); // "queue mail at its concurrency limit 1"
 * }
 * ```
 */
export function admit(
  config: QueueConfig,
  state: LimiterState,
  job: LimitedJob,
  now: number,
): Admission {
  const queue = take(config, state, now, { queue: job.queue });
  if (!queue.ok) return queue;
  const key = job.partition;
  if (key === undefined || !config.partition) {
    return { ok: true, state: { ...state, ...queue.use } };
  }
  const own = state.partitions[key] ?? { running: 0 };
  const part = take(config.partition, own, now, { queue: job.queue, partition: key });
  if (!part.ok) return part;
  return {
    ok: true,
    state: {
      ...state,
      ...queue.use,
      partitions: { ...prune(state.partitions, config, now), [key]: part.use },
      lastPartition: key,
    },
  };
}

function take(
  limits: { concurrency?: number; rateLimit?: RateLimit },
  use: LimitUse,
  now: number,
  who: { queue: string; partition?: string },
): { ok: true; use: LimitUse } | { ok: false; reason: WaitReason } {
  const { concurrency, rateLimit } = limits;
  if (concurrency !== undefined && use.running >= concurrency) {
    return { ok: false, reason: concurrencyReason(who, concurrency) };
  }
  if (!rateLimit) return { ok: true, use: { running: use.running + 1 } };
  const slot = takeSlot(use.rate, rateLimit, now);
  if (!slot.ok) return { ok: false, reason: rateReason(who, rateLimit, slot.retryInMs) };
  return { ok: true, use: { running: use.running + 1, rate: slot.window } };
}

function concurrencyReason(who: { queue: string; partition?: string }, max: number): WaitReason {
  const text = who.partition === undefined
    ? `queue ${who.queue} at its concurrency limit ${max}`
    : `partition ${who.partition} at its limit: ${max} running at once in queue ${who.queue}`;
  return { ...who, limit: "concurrency", max, text };
}

function rateReason(
  who: { queue: string; partition?: string },
  rate: RateLimit,
  retryInMs: number,
): WaitReason {
  const whose = who.partition === undefined ? "" : `partition ${who.partition} `;
  const text = `${whose}rate limit ${rateText(rate)}: next slot in ${retryInMs} ms`;
  return { ...who, limit: "rate", rate, retryInMs, text };
}

/** Partitions that still hold something at `now` (the record stays bounded by active keys). */
function prune(
  partitions: Record<string, LimitUse>,
  config: QueueConfig,
  now: number,
): Record<string, LimitUse> {
  const rate = config.partition?.rateLimit;
  const out: Record<string, LimitUse> = {};
  for (const [key, use] of Object.entries(partitions)) {
    const recent = rate && use.rate ? startsInWindow(use.rate, rate, now) : 0;
    if (use.running > 0 || recent > 0) out[key] = use;
  }
  return out;
}

/**
 * The state after a job of `job.partition` stopped running (its outcome commit, or the reaper
 * taking it from a dead worker). Starts stay counted in the rate windows: a rate limits starts,
 * not running time. Never below zero, so a repeated release cannot free a slot twice.
 */
export function release(state: LimiterState, job: LimitedJob): LimiterState {
  const next: LimiterState = { ...state, running: Math.max(0, state.running - 1) };
  const key = job.partition;
  const own = key === undefined ? undefined : state.partitions[key];
  if (key === undefined || !own) return next;
  const partitions = { ...state.partitions };
  const running = Math.max(0, own.running - 1);
  if (running === 0 && !own.rate) delete partitions[key];
  else partitions[key] = { ...own, running };
  return { ...next, partitions };
}

/** Current use of a queue's limits at `now`, for the Queues page and `/metrics`. */
export interface LimiterUse {
  /** Jobs of the queue running. */
  running: number;
  /** Starts counted in the queue's rate window (0 without a rate limit). */
  startsInWindow: number;
  /** Partitions with a job running or a recent start. */
  activePartitions: number;
}

/** What `state` holds at `now` under `config`, as numbers. */
export function limiterUse(config: QueueConfig, state: LimiterState, now: number): LimiterUse {
  return {
    running: state.running,
    startsInWindow: config.rateLimit ? startsInWindow(state.rate, config.rateLimit, now) : 0,
    activePartitions: Object.keys(prune(state.partitions, config, now)).length,
  };
}
