/**
 * @module
 * `ctx.atomic` on Deno KV: a handler's writes commit with its Succeeded outcome or not at all;
 * its failing check fails only its own attempt; other backends refuse it with UNSUPPORTED; and
 * under SIGKILLed workers a counter kept through it equals the number of Succeeded jobs.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { KvStorage } from "../storage/kv/mod.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import { eventually, spawnWorkerProcess } from "./helpers.ts";
import { tally } from "./fixtures/atomic_jobs.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function counter(kv: Deno.Kv): Promise<number> {
  const entry = await kv.get<Deno.KvU64>(["app", "counter"]);
  return Number(entry.value?.value ?? 0n);
}

Deno.test({
  ...opts,
  name: "ctx.atomic (KV): writes commit with Succeeded; a failed check fails only that attempt",
  fn: async () => {
    const storage = await KvStorage.open(":memory:", "kv::memory:");
    const tf = new TaskFlow(storage);
    const guarded = defineJob("guarded", (args: { n: number }, ctx) => {
      ctx.atomic((op) =>
        op.check({ key: ["app", "guard", args.n], versionstamp: null })
          .set(["app", "guard", args.n], true).sum(["app", "counter"], 1n)
      );
      return args.n;
    }, { attempts: 2, backoff: { type: "fixed", delayMs: 60_000 } });
    const worker = createWorker({ storage, jobs: [guarded], concurrency: 10, logger: () => {} });
    try {
      await storage.kv.set(["app", "guard", 3], "taken"); // job 3's check must fail
      await worker.start();
      const ids = await tf.enqueueMany([1, 2, 3, 4].map((n) => ({ job: guarded, args: { n } })));
      for (const id of [ids[0], ids[1], ids[3]]) {
        assert.equal((await tf.waitFor(id, { timeoutMs: 20_000 })).state, "Succeeded");
      }
      const failed = await eventually(async () => {
        const record = (await tf.get(ids[2]))!;
        assert.equal(record.state, "Scheduled");
        return record;
      });
      assert.equal(failed.retryOf, 1);
      assert.equal(failed.error?.code, "ATOMIC_CHECK_FAILED");
      assert.equal(await counter(storage.kv), 3, "only the succeeded jobs' writes");
      assert.equal((await storage.kv.get(["app", "guard", 3])).value, "taken");
    } finally {
      await worker.stop();
      await tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "ctx.atomic: UNSUPPORTED off KV; a bad operation fails the handler with its own message",
  fn: async () => {
    const storage = new MemoryStorage();
    const tf = new TaskFlow(storage);
    const once = { attempts: 1 };
    const wants = defineJob("wants.atomic", (_: unknown, ctx) => {
      ctx.atomic((op) => op.set(["x"], 1));
    }, once);
    const worker = createWorker({ storage, jobs: [wants], concurrency: 1, logger: () => {} });
    try {
      await worker.start();
      const id = await tf.enqueue(wants, {});
      await assert.rejects(() => tf.waitFor(id, { timeoutMs: 20_000 }), (e: unknown) => {
        assert.equal((e as { error?: { code?: string } }).error?.code, "UNSUPPORTED");
        return true;
      });
    } finally {
      await worker.stop();
      await tf.close();
    }
    const kv = await KvStorage.open(":memory:", "kv::memory:");
    const tfKv = new TaskFlow(kv);
    const commits = defineJob("commits", (_: unknown, ctx) => {
      ctx.atomic((op) => (op as unknown as { commit(): void }).commit());
    }, once);
    const kvWorker = createWorker({
      storage: kv,
      jobs: [commits],
      concurrency: 1,
      logger: () => {},
    });
    try {
      await kvWorker.start();
      const id = await tfKv.enqueue(commits, {});
      await assert.rejects(() => tfKv.waitFor(id, { timeoutMs: 20_000 }), /the worker commits/);
    } finally {
      await kvWorker.stop();
      await tfKv.close();
    }
  },
});

Deno.test({
  ...opts,
  name:
    "ctx.atomic chaos: 3 workers on one KV file SIGKILLed at random; the counter equals the Succeeded jobs exactly",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-atomic-" });
    const file = `${dir}/atomic.sqlite`;
    const runs = `${dir}/runs.txt`;
    const url = `kv:${file}`;
    const jobs = 1_000;
    const storage = await KvStorage.open(file, url);
    const tf = new TaskFlow(storage);
    const spawn = () =>
      spawnWorkerProcess({
        url,
        jobs: "tests/fixtures/atomic_jobs.ts",
        runs,
        args: ["--concurrency", "10", "--heartbeat-ms", "200"],
        output: "null",
      });
    const workers = [spawn(), spawn(), spawn()];
    let kills = 0, inFlightAtKills = 0;
    try {
      await tf.enqueueMany(Array.from({ length: jobs }, (_, n) => ({ job: tally, args: { n } })));
      // Five times: once jobs are running (the workers may be slow to start on a loaded
      // machine), SIGKILL one worker at random and start another in its place.
      while (kills < 5 && (await tf.counts()).states.Succeeded < jobs) {
        const processing = (await tf.counts()).states.Processing;
        if (processing === 0) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        const i = Math.floor(Math.random() * workers.length);
        inFlightAtKills += processing;
        workers[i].kill("SIGKILL");
        await workers[i].status;
        workers[i] = spawn();
        kills++;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      await eventually(async () => {
        assert.equal((await tf.counts()).states.Succeeded, jobs);
      }, 120_000);
      const ran = (await Deno.readTextFile(runs)).trim().split("\n").length;
      assert.ok(kills >= 2, `only ${kills} kills`);
      assert.ok(inFlightAtKills > 0, "the kills hit workers in the middle of jobs");
      assert.ok(ran >= jobs, `${ran} runs`);
      assert.equal(await counter(storage.kv), jobs, `${ran} runs of the work, ${kills} kills`);
      let done = 0;
      for await (const _ of storage.kv.list({ prefix: ["app", "done"] })) done++;
      assert.equal(done, jobs);
      console.log(`  ${kills} kills, ${ran} runs of the work for ${jobs} jobs; counter ${jobs}`);
    } finally {
      for (const worker of workers) {
        try {
          worker.kill("SIGKILL");
        } catch { /* already gone */ }
        await worker.status;
      }
      await tf.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
