/**
 * @module
 * Flow-control scenarios (issue 21 point 5), each one of a pair measured side by side in one run:
 * processing at c=50 under a global limit of 50 or none, unique enqueues or plain ones, and a
 * rate-limited queue's achieved start rate over its limit.
 */

import process from "node:process";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { redisStats } from "./redis_info.ts";
import { type Backend, type Figure, processWith, withClient } from "./scenarios.ts";

const noop = defineJob("bench.noop", () => {});

/** No-op jobs at c=50, the queue at a global concurrency of 50 (`limited`) or without limits. */
export async function processingLimited(
  backend: Backend,
  limited: boolean,
  n = 20_000,
): Promise<Figure> {
  const cpu = process.cpuUsage();
  const figure = await processWith(backend, n, {
    concurrency: 50,
    limits: limited ? { concurrency: 50 } : {},
  });
  // CPU of the whole run (enqueues, claims, outcomes) per job: the wall clock moves with the
  // machine's other load, this much less.
  const used = process.cpuUsage(cpu);
  return { ...figure, extra: { ...figure.extra, "CPU µs/job": (used.user + used.system) / n } };
}

/**
 * Awaited enqueues of distinct args, `unique` (the default key: name + args, so each takes a
 * key of its own) or plain: one after the other (`callers` 1), or from `callers` at once (their
 * creates share atomic writes through the group commit).
 */
export function enqueueUnique(
  backend: Backend,
  how: { unique: boolean; callers: number },
  n = 2_000,
): Promise<Figure> {
  const options = how.unique ? { unique: {} } : {};
  const perCaller = Math.ceil(n / how.callers);
  return withClient(backend, async (tf, url) => {
    const redis = url.startsWith("redis") ? url : undefined;
    const before = redis ? await redisStats(redis) : undefined;
    const started = performance.now();
    const cpu = process.cpuUsage();
    await Promise.all(Array.from({ length: how.callers }, async (_, c) => {
      for (let i = 0; i < perCaller; i++) await tf.enqueue(noop, { c, i }, options);
    }));
    const seconds = (performance.now() - started) / 1_000;
    const used = process.cpuUsage(cpu);
    const after = redis ? await redisStats(redis) : undefined;
    const jobs = how.callers * perCaller;
    // CPU per job beside wall clock: on a loaded machine the wall clock moves with the others.
    const extra: Record<string, number> = { "CPU µs/job": (used.user + used.system) / jobs };
    if (before && after) {
      extra["Redis CPU µs/job"] = (after.cpuSeconds - before.cpuSeconds) * 1e6 / jobs;
      extra["Redis commands/job"] = (after.calls - before.calls) / jobs;
    }
    return { value: jobs / seconds, unit: "jobs/s", extra };
  });
}

/**
 * A queue limited to `max` starts a second, with `windows × max + 1` no-op jobs ready and a
 * worker at c=50: starts over the time from the first start to the last (the first of the next
 * burst), as a percentage of `max`: 100 is the limit met exactly; the window never lets it
 * above.
 */
export function rateAchieved(backend: Backend, max: number, windows = 5): Promise<Figure> {
  return withClient(backend, async (tf) => {
    const n = windows * max + 1;
    await tf.queues.configure("default", { rateLimit: { max, perMs: 1_000 } });
    const ids: string[] = [];
    for (let i = 0; i < n; i += 1_000) {
      ids.push(
        ...await tf.enqueueMany(
          Array.from({ length: Math.min(1_000, n - i) }, () => ({ job: noop, args: null })),
        ),
      );
    }
    const worker = createWorker({
      storage: tf.storage,
      jobs: [noop],
      concurrency: 50,
      logger: () => {},
    });
    await worker.start();
    try {
      while ((await tf.counts()).states.Succeeded < n) {
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await worker.stop();
    }
    const starts = (await tf.getMany(ids)).map((r) => r!.startedAt!).sort((a, b) => a - b);
    const achieved = (n - 1) / ((starts[n - 1] - starts[0]) / 1_000);
    return { value: (100 * achieved) / max, unit: "% of limit", extra: { "starts/s": achieved } };
  });
}
