/**
 * @module
 * `queue <name> [--concurrency N] [--rate MAX/PERIOD] [--partition-concurrency N]
 * [--partition-rate MAX/PERIOD] [--clear]`: shows or changes a queue's stored limits through
 * `tf.queues`, the same call a program makes.
 */

import { redact } from "../../storage/redact.ts";
import { TaskFlow } from "../client.ts";
import {
  configText,
  parseConcurrency,
  parseRate,
  type QueueConfigUpdate,
} from "../queues/config.ts";
import { limitsOf } from "../queues/store.ts";
import type { Flag, Parsed, Settings } from "./flags.ts";
import { UsageError } from "./flags.ts";

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
  if (concurrency !== undefined) {
    update.concurrency = parseConcurrency(concurrency, "--concurrency");
  }
  if (rate !== undefined) update.rateLimit = parseRate(rate, "--rate");
  if (partConcurrency !== undefined || partRate !== undefined) {
    update.partition = {};
    if (partConcurrency !== undefined) {
      update.partition.concurrency = parseConcurrency(
        partConcurrency,
        "--partition-concurrency",
      );
    }
    if (partRate !== undefined) {
      update.partition.rateLimit = parseRate(partRate, "--partition-rate");
    }
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
