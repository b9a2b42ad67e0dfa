/**
 * @module
 * `queue <name> [--concurrency N] [--rate MAX/PERIOD] [--partition-concurrency N]
 * [--partition-rate MAX/PERIOD] [--clear]`: shows or changes a queue's stored limits through
 * `tf.queues`, the same call a program makes.
 */

import { InvalidOptionError } from "../../storage/errors.ts";
import { redact } from "../../storage/redact.ts";
import { TaskFlow } from "../client.ts";
import {
  configText,
  MAX_QUEUE_CONCURRENCY,
  MAX_RATE,
  MAX_RATE_WINDOW_MS,
  type QueueConfigUpdate,
  type RateLimit,
} from "../queues/config.ts";
import { limitsOf } from "../queues/store.ts";
import type { Flag, Parsed, Settings } from "./flags.ts";
import { UsageError } from "./flags.ts";

const PERIODS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const RATE_RULE = "must be MAX/PERIOD such as 100/1s, 100/s, 5/1m or 10/250ms, or none";

/** Reads `--rate` / `--partition-rate`: `100/1s` → `{ max: 100, perMs: 1000 }`; `none` → null. */
export function rateOf(flag: Flag, text: string): RateLimit | null {
  if (text.trim() === "none") return null;
  const match = /^(\d+)\/(\d+(?:\.\d+)?)?(ms|s|min|m|h|d)$/.exec(text.trim());
  if (!match) throw new InvalidOptionError(`--${flag}`, text, RATE_RULE);
  const max = Number(match[1]);
  const perMs = Math.round(Number(match[2] ?? 1) * PERIODS[match[3]]);
  if (max < 1 || max > MAX_RATE) {
    throw new InvalidOptionError(`--${flag}`, text, `MAX must be from 1 to ${MAX_RATE}`);
  }
  if (perMs < 1 || perMs > MAX_RATE_WINDOW_MS) {
    throw new InvalidOptionError(`--${flag}`, text, "PERIOD must be from 1ms to 1d");
  }
  return { max, perMs };
}

function countOf(flag: Flag, text: string): number | null {
  if (text.trim() === "none") return null;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value < 1 || value > MAX_QUEUE_CONCURRENCY) {
    throw new InvalidOptionError(
      `--${flag}`,
      text,
      `must be a whole number from 1 to ${MAX_QUEUE_CONCURRENCY}, or none`,
    );
  }
  return value;
}

/**
 * The change the flags ask for; flags are read from the command line only (not from the
 * environment: TASKFLOW_CONCURRENCY is a worker's own setting).
 */
export function updateOf(parsed: Parsed): QueueConfigUpdate | undefined {
  const text = (flag: Flag) => {
    const value = parsed.values[flag];
    return typeof value === "string" ? value : undefined;
  };
  const [concurrency, rate, partConcurrency, partRate] = [
    text("concurrency"),
    text("rate"),
    text("partition-concurrency"),
    text("partition-rate"),
  ];
  const any = [concurrency, rate, partConcurrency, partRate].some((v) => v !== undefined);
  if (parsed.values.clear === true) {
    if (any) throw new UsageError("--clear removes every limit; give it alone");
    return { concurrency: null, rateLimit: null, partition: null };
  }
  if (!any) return undefined;
  const update: QueueConfigUpdate = {};
  if (concurrency !== undefined) update.concurrency = countOf("concurrency", concurrency);
  if (rate !== undefined) update.rateLimit = rateOf("rate", rate);
  if (partConcurrency !== undefined || partRate !== undefined) {
    update.partition = {};
    if (partConcurrency !== undefined) {
      update.partition.concurrency = countOf("partition-concurrency", partConcurrency);
    }
    if (partRate !== undefined) update.partition.rateLimit = rateOf("partition-rate", partRate);
  }
  return update;
}

/** Prints (and with flags, first changes) a queue's limits; returns the exit code. */
export async function queue(parsed: Parsed, settings: Settings): Promise<number> {
  const [name] = parsed.positionals;
  if (name === undefined) {
    throw new UsageError(
      "queue needs a queue name (usage: deno task queue <name> [--concurrency N] [--rate 100/1s])",
    );
  }
  const update = updateOf(parsed);
  if (update && settings("storage")?.trim() === "memory:") {
    // The limits would vanish with this process, before any worker could obey them.
    throw new UsageError(
      "queue cannot change limits in memory: (it lives inside one process); give a shared " +
        "storage such as kv:<path> or redis://host",
    );
  }
  const tf = await TaskFlow.open(settings("storage"));
  try {
    const stored = update ? await tf.queues.configure(name, update) : await tf.queues.get(name);
    console.log(
      `queue ${name} in ${redact(tf.address)}: ${configText(limitsOf(stored))}` +
        (update ? " (saved; every worker obeys it)" : ""),
    );
  } finally {
    await tf.close();
  }
  return 0;
}
