/**
 * @module
 * Redis restarts under load: a worker runs 2,000 jobs against its own `redis-server` (AOF,
 * fsync always), which is killed with SIGKILL mid-run and started again on the same directory.
 * The worker must reconnect by itself, finish every job exactly in Succeeded with records equal
 * to the fold of their events, and report the outage once, not once per job.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker, type Worker } from "../lib/worker/worker.ts";
import { RedisStorage } from "../storage/redis/mod.ts";
import { assertConsistent, eventually } from "./helpers.ts";
import { freePort, REDIS_REQUIRED, RedisServer, redisServerMissing } from "./redis_helpers.ts";

const JOBS = 2_000;

const missing = await redisServerMissing();
if (missing && !REDIS_REQUIRED) console.log(`skipping redis fault test: ${missing}`);

Deno.test({
  name: "redis: a worker rides out a Redis SIGKILL and restart; every job ends Succeeded once",
  ignore: Boolean(missing) && !REDIS_REQUIRED,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-redis-fault-" });
    const server = new RedisServer(freePort(), [
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
      "--dir",
      dir,
    ]);
    let worker: Worker | undefined;
    let storage: RedisStorage | undefined;
    let tf: TaskFlow | undefined;
    const logs: string[] = [];
    const runs = new Map<string, number>();
    try {
      await server.start();
      storage = await RedisStorage.open(server.url);
      tf = await TaskFlow.open(server.url);
      const job = defineJob("fault.work", async (_: unknown, ctx) => {
        runs.set(ctx.jobId, (runs.get(ctx.jobId) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 10));
      });
      const ids: string[] = [];
      for (let i = 0; i < JOBS; i += 500) {
        ids.push(
          ...await tf.enqueueMany(
            Array.from({ length: 500 }, (_, j) => ({ job, args: { i: i + j } })),
          ),
        );
      }
      worker = createWorker({
        storage,
        jobs: [job],
        concurrency: 10,
        heartbeatMs: 200,
        pollIntervalMs: 100,
        logger: (level, text) => logs.push(`${level}: ${text}`),
      });
      await worker.start();
      await eventually(() => assert.ok(runs.size >= JOBS / 4, `only ${runs.size} ran`), 30_000);
      await server.kill();
      const killedAt = runs.size;
      await new Promise((r) => setTimeout(r, 1_000));
      await server.start();
      const tfNow = tf;
      await eventually(async () => {
        const counts = await tfNow.counts();
        assert.equal(counts.states.Succeeded, JOBS, JSON.stringify(counts.states));
      }, 60_000);
      assert.ok(killedAt < JOBS, "Redis was killed while jobs were still waiting");
      const counts = await tf.counts();
      assert.deepEqual(
        { ...counts.states },
        { ...counts.states, Succeeded: JOBS, Processing: 0, Enqueued: 0, Scheduled: 0 },
      );
      assert.equal(counts.totals.created, JOBS);
      assert.equal(runs.size, JOBS, "every job ran");
      const records = await tf.storage.getMany(ids);
      assert.ok(records.every((r) => r?.state === "Succeeded"));
      await assertConsistent(tf.storage);
      const outage = logs.filter((line) => line.startsWith("error:"));
      assert.ok(outage.length >= 1, "the outage was reported");
      assert.ok(
        outage.length <= 3,
        `the outage is reported once, not per job:\n${outage.slice(0, 10).join("\n")}`,
      );
      assert.ok(logs.some((line) => /storage answers again/.test(line)), logs.join("\n"));
      const repeats = [...runs.values()].filter((n) => n > 1).length;
      console.log(
        `killed after ${killedAt} runs; ${repeats} jobs ran twice (claims whose reply was lost ` +
          `are reaped and run again); worker log:\n${logs.join("\n")}`,
      );
    } finally {
      await worker?.stop().catch(() => {});
      await storage?.close();
      await tf?.close().catch(() => {});
      await server.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
