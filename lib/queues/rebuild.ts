/**
 * @module
 * The limiter records (`rate:<queue>`: the queue's rate window and its partitions' windows)
 * recomputed from the event logs, for `rebuild`: every claim within a window counts, read from
 * the Processing events of the jobs that may hold one.
 */

import type { Storage } from "../../storage/storage.ts";
import { ConflictError } from "../../storage/errors.ts";
import { STATES } from "../states.ts";
import { configOf, type QueueConfig } from "./config.ts";
import { type RateWindow, windowOf } from "./rate.ts";
import { rateWindowId } from "./wait.ts";

const PREFIX = "queue:";
const PAGE = 500;

/**
 * Rewrites the limiter record of every queue with a rate limit (its own or its partitions')
 * from the claims in the logs within the window at `now`; returns the queues rewritten. Each
 * record is put by compare-and-set on the version read; run it while no worker claims.
 */
export async function rebuildLimiterRecords(storage: Storage, now: number): Promise<string[]> {
  const configs = new Map<string, QueueConfig>();
  for (const record of await storage.settings.list()) {
    if (!record.id.startsWith(PREFIX)) continue;
    const config = configOf(record);
    if (config.rateLimit || config.partition?.rateLimit) {
      configs.set(record.id.slice(PREFIX.length), config);
    }
  }
  if (!configs.size) return [];
  const widest = Math.max(
    ...[...configs.values()].flatMap((
      c,
    ) => [c.rateLimit?.perMs ?? 0, c.partition?.rateLimit?.perMs ?? 0]),
  );
  const starts = await startsSince(storage, new Set(configs.keys()), now - widest);
  const rewritten: string[] = [];
  for (const [queue, config] of configs) {
    const own = starts.get(queue) ?? [];
    const partitions: Record<string, RateWindow> = {};
    const rate = config.partition?.rateLimit;
    if (rate) {
      const byKey = new Map<string, number[]>();
      for (const { at, partition } of own) {
        if (partition !== undefined) byKey.set(partition, [...byKey.get(partition) ?? [], at]);
      }
      for (const [key, times] of byKey) {
        const window = windowOf(times, rate, now);
        if (window.slots.length) partitions[key] = window;
      }
    }
    const window = config.rateLimit
      ? windowOf(own.map((s) => s.at), config.rateLimit, now)
      : undefined;
    const id = rateWindowId(queue);
    const current = await storage.settings.get(id);
    const version = current?.version ?? 0;
    const record = {
      id,
      version: version + 1,
      window,
      partitions,
      lastPartition: current?.lastPartition,
    };
    if (!await storage.settings.put(record, version)) throw new ConflictError(`settings:${id}`, 1);
    rewritten.push(queue);
  }
  return rewritten;
}

/** A claim read from a log: when, and the job's partition key. */
interface Start {
  at: number;
  partition?: string;
}

/**
 * The claims at or after `since` of jobs of `queues`, by queue. A job claimed since then
 * entered its current state since then too, so each state's list (newest first) is read only
 * down to `since`.
 */
async function startsSince(
  storage: Storage,
  queues: ReadonlySet<string>,
  since: number,
): Promise<Map<string, Start[]>> {
  const out = new Map<string, Start[]>();
  for (const state of STATES) {
    let cursor: string | undefined;
    let older = false;
    do {
      const page = await storage.list({ state, limit: PAGE, cursor });
      for (const job of page.jobs) {
        if (job.stateAt < since) older = true;
        if (!queues.has(job.queue)) continue;
        for (const event of await storage.events(job.id)) {
          if (event.type !== "state" || event.state !== "Processing" || event.at < since) continue;
          const list = out.get(job.queue) ?? [];
          out.set(job.queue, list);
          list.push({ at: event.at, partition: job.options.partition });
        }
      }
      cursor = page.cursor;
    } while (cursor && !older);
  }
  return out;
}
