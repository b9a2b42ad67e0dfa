/**
 * @module
 * A queue's flow-control limits (global concurrency, a rate limit, per-partition limits): the
 * types, their validation, and how an update merges into the stored configuration.
 */

import { InvalidOptionError } from "../../storage/errors.ts";
import { readOptions } from "../options.ts";

/** At most `max` job starts in any window of `perMs` milliseconds, across all workers. */
export interface RateLimit {
  /** Starts allowed per window (1 to {@link MAX_RATE}). */
  max: number;
  /** The window, in ms (1 to {@link MAX_RATE_WINDOW_MS}). */
  perMs: number;
}

/** Limits applied to each partition key of a queue separately. */
export interface PartitionLimits {
  /** Jobs of one partition running at once, across all workers. */
  concurrency?: number;
  /** Starts of one partition per window, across all workers. */
  rateLimit?: RateLimit;
}

/**
 * A queue's limits; an absent field means no such limit.
 *
 * @example
 * ```ts
 * import type { QueueConfig } from "../mod.ts";
 * const mail: QueueConfig = {
 *   concurrency: 5,
 *   rateLimit: { max: 100, perMs: 1_000 },
 *   partition: { concurrency: 1 },
 * };
 * console.log(mail.rateLimit?.max);
 * ```
 */
export interface QueueConfig {
  /** Jobs of the queue running at once, across all workers. */
  concurrency?: number;
  /** Starts of the queue's jobs per window, across all workers. */
  rateLimit?: RateLimit;
  /** Limits applied to each partition key (`options.partition`) separately. */
  partition?: PartitionLimits;
}

/**
 * A change to a queue's limits (`tf.queues.configure`): a given field replaces the stored one,
 * `null` removes that limit, an absent field keeps what is stored.
 */
export interface QueueConfigUpdate {
  /** New global concurrency, or null for none. */
  concurrency?: number | null;
  /** New rate limit, or null for none. */
  rateLimit?: RateLimit | null;
  /** Per-partition limits (merged field by field the same way), or null for none. */
  partition?: { concurrency?: number | null; rateLimit?: RateLimit | null } | null;
}

/** A queue's stored limits with its name and when they were last changed. */
export interface QueueSettings extends QueueConfig {
  /** The queue. */
  name: string;
  /** When the limits were last changed (ms since epoch). */
  updatedAt: number;
}

/** Highest concurrency limit accepted. */
export const MAX_QUEUE_CONCURRENCY = 100_000;
/** Highest `rateLimit.max` accepted. */
export const MAX_RATE = 1_000_000;
/** Longest `rateLimit.perMs` accepted: one day. */
export const MAX_RATE_WINDOW_MS = 86_400_000;

const LIMIT_KEYS = ["concurrency", "rateLimit"] as const;
const CONFIG_KEYS = [...LIMIT_KEYS, "partition"] as const;

/** Reads an update (`null` allowed per field); every value is checked, naming its path. */
export function readConfigUpdate(value: unknown, where = "config"): QueueConfigUpdate {
  const read = readOptions(value, { call: "queues.configure", where, allowed: CONFIG_KEYS });
  const out: QueueConfigUpdate = readLimits(read, where);
  if (read.partition === null) out.partition = null;
  else if (read.partition !== undefined) {
    const part = readOptions(read.partition, {
      call: "queues.configure",
      where: `${where}.partition`,
      allowed: LIMIT_KEYS,
    });
    out.partition = readLimits(part, `${where}.partition`);
  }
  return out;
}

function readLimits(read: Record<string, unknown>, where: string) {
  const out: { concurrency?: number | null; rateLimit?: RateLimit | null } = {};
  if (read.concurrency !== undefined) {
    out.concurrency = read.concurrency === null
      ? null
      : checkWhole(read.concurrency, `${where}.concurrency`, MAX_QUEUE_CONCURRENCY);
  }
  if (read.rateLimit !== undefined) {
    out.rateLimit = read.rateLimit === null
      ? null
      : checkRateLimit(read.rateLimit, `${where}.rateLimit`);
  }
  return out;
}

/** Checks `{ max, perMs }`, both whole numbers within bounds; returns a copy. */
export function checkRateLimit(value: unknown, where: string): RateLimit {
  const read = readOptions(value, { call: "queues.configure", where, allowed: ["max", "perMs"] });
  if (value === undefined || read.max === undefined || read.perMs === undefined) {
    throw new InvalidOptionError(where, value, "must be { max, perMs }");
  }
  return {
    max: checkWhole(read.max, `${where}.max`, MAX_RATE),
    perMs: checkWhole(read.perMs, `${where}.perMs`, MAX_RATE_WINDOW_MS),
  };
}

function checkWhole(value: unknown, where: string, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidOptionError(where, value, `must be a whole number from 1 to ${max}`);
  }
  return value;
}

/** `stored` with `update` applied: given fields replace, null removes, absent ones stay. */
export function mergeConfig(stored: QueueConfig, update: QueueConfigUpdate): QueueConfig {
  const out = mergeLimits(stored, update) as QueueConfig;
  if (update.partition === null) return out;
  if (update.partition === undefined) {
    if (stored.partition) out.partition = stored.partition;
    return out;
  }
  const partition = mergeLimits(stored.partition ?? {}, update.partition);
  if (Object.keys(partition).length) out.partition = partition;
  return out;
}

function mergeLimits(stored: PartitionLimits, update: QueueConfigUpdate): PartitionLimits {
  const out: PartitionLimits = {};
  const concurrency = update.concurrency === undefined ? stored.concurrency : update.concurrency;
  if (concurrency != null) out.concurrency = concurrency;
  const rate = update.rateLimit === undefined ? stored.rateLimit : update.rateLimit;
  if (rate != null) out.rateLimit = { max: rate.max, perMs: rate.perMs };
  return out;
}

/**
 * The config in a stored settings record; a damaged field reads as no limit (a bad record
 * must not stop the queue's jobs; the next `configure` writes a good one).
 */
export function configOf(record: Record<string, unknown>): QueueConfig {
  try {
    return mergeConfig(
      {},
      readConfigUpdate({
        concurrency: record.concurrency ?? undefined,
        rateLimit: record.rateLimit ?? undefined,
        partition: record.partition ?? undefined,
      }),
    );
  } catch {
    return {};
  }
}

/** True when the config sets no limit at all. */
export function isUnlimited(config: QueueConfig): boolean {
  return config.concurrency === undefined && config.rateLimit === undefined &&
    config.partition === undefined;
}

const PERIODS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Reads a rate as people write it: `100/1s`, `100/s`, `5/1m`, `10/250ms` → `{ max, perMs }`;
 * `none` → null. `where` names the field or flag in the error.
 */
export function parseRate(text: string, where: string): RateLimit | null {
  if (text.trim() === "none") return null;
  const match = /^(\d+)\/(\d+(?:\.\d+)?)?(ms|s|min|m|h|d)$/.exec(text.trim());
  if (!match) {
    throw new InvalidOptionError(
      where,
      text,
      "must be MAX/PERIOD such as 100/1s, 100/s, 5/1m or 10/250ms, or none",
    );
  }
  const max = Number(match[1]);
  const perMs = Math.round(Number(match[2] ?? 1) * PERIODS[match[3]]);
  if (max < 1 || max > MAX_RATE) {
    throw new InvalidOptionError(where, text, `MAX must be from 1 to ${MAX_RATE}`);
  }
  if (perMs < 1 || perMs > MAX_RATE_WINDOW_MS) {
    throw new InvalidOptionError(where, text, "PERIOD must be from 1ms to 1d");
  }
  return { max, perMs };
}

/**
 * Reads a concurrency as people write it: a whole number, or `none` → null. `where` names the
 * field or flag in the error.
 */
export function parseConcurrency(text: string, where: string): number | null {
  if (text.trim() === "none") return null;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value < 1 || value > MAX_QUEUE_CONCURRENCY) {
    throw new InvalidOptionError(
      where,
      text,
      `must be a whole number from 1 to ${MAX_QUEUE_CONCURRENCY}, or none`,
    );
  }
  return value;
}

/** A rate as people say it: 100/s, 5/min, 1000/h, 10/250ms. */
export function rateText(rate: RateLimit): string {
  const units: [number, string][] = [[86_400_000, "d"], [3_600_000, "h"], [60_000, "min"], [
    1_000,
    "s",
  ]];
  for (const [ms, unit] of units) {
    if (rate.perMs === ms) return `${rate.max}/${unit}`;
    if (rate.perMs % ms === 0) return `${rate.max}/${rate.perMs / ms}${unit}`;
  }
  return `${rate.max}/${rate.perMs}ms`;
}

/** A config as one line: "concurrency 5, rate 100/s, per partition: concurrency 1". */
export function configText(config: QueueConfig): string {
  const limits = (l: PartitionLimits) =>
    [
      l.concurrency !== undefined ? `concurrency ${l.concurrency}` : "",
      l.rateLimit ? `rate ${rateText(l.rateLimit)}` : "",
    ].filter(Boolean);
  const parts = limits(config);
  if (config.partition) {
    parts.push(`per partition: ${limits(config.partition).join(", ")}`);
  }
  return parts.length ? parts.join(", ") : "no limits";
}
