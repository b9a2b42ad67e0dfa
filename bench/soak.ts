/**
 * @module
 * The retention soak: jobs fed at a steady rate through one worker (concurrency 50) that keeps
 * Succeeded jobs 5 s; the store's bytes after the first tenth of the jobs and at the end. With
 * pruning keeping up, the store holds about `rate × (5 s + a prune interval)` finished jobs all
 * along, so the end should be no bigger than the first tenth (issue 19: ≤ 1.2×).
 */

import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { RedisStorage } from "../storage/redis/mod.ts";
import type { Storage } from "../storage/storage.ts";
import { fileSize, usedMemory } from "./footprint.ts";
import type { Backend, Figure } from "./scenarios.ts";

const job = defineJob(
  "bench.soak",
  (args: { i: number; to: string }) => ({ ok: args.i }),
);

/** How a soak runs. */
export interface SoakOptions {
  /** How long Succeeded jobs are kept (default 5 s). */
  keepMs?: number;
  /** Jobs enqueued per second (default 2,000): the feed, slower than the worker. */
  rate?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Bytes of `MEMORY USAGE` over the keys of the storage's prefix (other clients add nothing). */
async function prefixBytes(redis: RedisStorage): Promise<number> {
  let total = 0, cursor = "0";
  do {
    const [next, keys] = await redis.command<[string, string[]]>(
      "SCAN",
      cursor,
      "MATCH",
      `${redis.keyPrefix}*`,
      "COUNT",
      1_000,
    );
    const sizes = await Promise.all(
      keys.map((key) => redis.command<number | null>("MEMORY", "USAGE", key, "SAMPLES", 0)),
    );
    total += sizes.reduce<number>((a, b) => a + (b ?? 0), 0);
    cursor = next;
  } while (cursor !== "0");
  return total;
}

/**
 * The store's size in bytes: Redis `used_memory` above `base` (the server's before the run) and
 * the prefix's keys, or the KV file's size with its WAL.
 */
async function sizes(storage: Storage, url: string, base = 0): Promise<Record<string, number>> {
  if (storage instanceof RedisStorage) {
    return { bytes: await usedMemory(storage) - base, keyBytes: await prefixBytes(storage) };
  }
  return { bytes: await fileSize(url.slice("kv:".length)) };
}

/**
 * Feeds `n` jobs through a worker with retention on; the figure is the store's size at the end
 * over its size after the first tenth (extra: both sizes in MB, the same ratio over the
 * prefix's keys on Redis, the jobs still kept at the end, seconds).
 */
export async function retentionSoak(
  backend: Backend,
  n = 200_000,
  options: SoakOptions = {},
): Promise<Figure> {
  const { keepMs = 5_000, rate = 2_000, log = () => {} } = options;
  const { storage, url, cleanup } = await backend.open();
  const tf = new TaskFlow(storage);
  const worker = createWorker({
    storage,
    jobs: [job],
    concurrency: 50,
    retention: { succeeded: { maxAgeMs: keepMs } },
    pruneIntervalMs: 1_000,
    logger: () => {},
  });
  try {
    const base = storage instanceof RedisStorage ? await usedMemory(storage) : 0;
    await worker.start();
    const started = performance.now();
    let enqueued = 0;
    let tenth: Record<string, number> | undefined;
    for (;;) {
      const { states, totals } = await tf.counts();
      if (!tenth && totals.succeeded >= n / 10) {
        tenth = await sizes(storage, url, base);
        log(`${backend.name}: ${totals.succeeded} done, ${states.Succeeded} kept: ${show(tenth)}`);
      }
      if (totals.succeeded >= n) break;
      const due = Math.min(n, Math.floor(((performance.now() - started) / 1_000) * rate));
      if (enqueued < due && states.Enqueued < 5 * rate) {
        const chunk = Math.min(500, due - enqueued);
        await tf.enqueueMany(Array.from({ length: chunk }, (_, j) => {
          const i = enqueued + j;
          return { job, args: { i, to: `user${i}@example.com` } };
        }));
        enqueued += chunk;
      } else await new Promise((r) => setTimeout(r, 20));
    }
    const end = await sizes(storage, url, base);
    const kept = (await tf.counts()).states.Succeeded;
    const seconds = (performance.now() - started) / 1_000;
    log(`${backend.name}: ${n} done in ${seconds.toFixed(0)} s, ${kept} kept: ${show(end)}`);
    const extra: Record<string, number> = {
      tenthMB: tenth!.bytes / 1_048_576,
      endMB: end.bytes / 1_048_576,
      kept,
      seconds,
    };
    if (end.keyBytes !== undefined) extra.keysRatio = end.keyBytes / tenth!.keyBytes;
    return { value: end.bytes / tenth!.bytes, unit: "× end / first tenth", extra };
  } finally {
    await worker.stop();
    await tf.close();
    await cleanup();
  }
}

function show(size: Record<string, number>): string {
  return Object.entries(size).map(([k, v]) => `${k} ${(v / 1_048_576).toFixed(1)} MB`).join(", ");
}
