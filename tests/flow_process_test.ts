/**
 * @module
 * Queue limits across worker processes: three `main.ts worker` subprocesses on one KV file, and
 * on one Redis prefix, share a queue's global concurrency limit, then its rate limit.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { LIMITS_REFRESH_MS } from "../lib/queues/limits_cache.ts";
import { eventually, spawnWorkerProcess } from "./helpers.ts";
import { mostAtOnce, mostInWindow } from "./flow_suite.ts";
import { deletePrefix, REDIS_URL, whenRedis } from "./redis_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/**
 * Runs 60 jobs of 50 ms under a global concurrency of 3 on three worker processes of 5 slots
 * each; the `slow` fixture appends "start" and "end" lines to one file, so their order is the
 * order in which handlers started and ended across processes.
 */
async function threeProcesses(url: string, dir: string): Promise<void> {
  const runs = `${dir}/runs.txt`;
  const tf = await TaskFlow.open(url);
  const workers: Deno.ChildProcess[] = [];
  try {
    await tf.queues.configure("default", { concurrency: 3 });
    await tf.enqueueMany(Array.from({ length: 60 }, () => ({ job: "slow", args: { ms: 50 } })));
    for (let i = 0; i < 3; i++) {
      workers.push(spawnWorkerProcess({
        url,
        jobs: "tests/fixtures/jobs.ts",
        runs,
        args: ["--concurrency", "5", "--heartbeat-ms", "200", "--poll-ms", "50"],
      }));
    }
    await eventually(async () => assert.equal((await tf.counts()).states.Succeeded, 60), 60_000);
    const lines = (await Deno.readTextFile(runs)).split("\n").filter(Boolean);
    const opened = new Map<string, number>();
    const spans: [number, number][] = [];
    lines.forEach((line, at) => {
      const [kind, id] = line.split(" ");
      if (kind === "start") opened.set(id, at);
      else spans.push([opened.get(id)!, at]);
    });
    assert.equal(spans.length, 60);
    assert.equal(mostAtOnce(spans), 3, "the limit is reached and never passed");
    const pids = new Set(lines.map((line) => line.split(" ")[2]));
    assert.equal(pids.size, 3, "every process took jobs");
    // Then a rate limit of 20 starts per second over 60 more jobs, counted at their claims.
    await tf.queues.configure("default", {
      concurrency: null,
      rateLimit: { max: 20, perMs: 1_000 },
    });
    // Running workers read the change within their refresh interval of the limits.
    await new Promise((r) => setTimeout(r, LIMITS_REFRESH_MS + 500));
    const ids = await tf.enqueueMany(
      Array.from({ length: 60 }, () => ({ job: "count", args: {} })),
    );
    await eventually(async () => assert.equal((await tf.counts()).states.Succeeded, 120), 60_000);
    const starts = (await tf.getMany(ids)).map((record) => record!.startedAt!);
    assert.equal(mostInWindow(starts, 1_000), 20, "the rate limit is reached and never passed");
  } finally {
    for (const worker of workers) worker.kill("SIGTERM");
    for (const worker of workers) await worker.output();
    await tf.close();
  }
}

Deno.test({
  ...opts,
  name:
    "three worker processes on one KV file keep a queue's global concurrency of 3 and rate of 20/s",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-flowp-" });
    try {
      await threeProcesses(`kv:${dir}/jobs.sqlite`, dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

await whenRedis("redis flow processes", () =>
  Deno.test({
    ...opts,
    name:
      "three worker processes on one Redis prefix keep a queue's global concurrency of 3 and rate of 20/s",
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "taskflow-flowp-" });
      const prefix = `tftest-flowp-${crypto.randomUUID().slice(0, 12)}`;
      try {
        await threeProcesses(`${REDIS_URL}?prefix=${prefix}`, dir);
      } finally {
        await deletePrefix(prefix);
        await Deno.remove(dir, { recursive: true });
      }
    },
  }));
