/**
 * @module
 * Workers as real subprocesses of `main.ts worker` on one KV file: exactly-once delivery with
 * two workers, recovery after SIGKILL, graceful SIGTERM, and start-up errors.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { assertConsistent, eventually, spawnWorkerProcess } from "./helpers.ts";

interface Env {
  dir: string;
  url: string;
  runs: string;
}

async function withEnv(fn: (env: Env) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-proc-" });
  try {
    await fn({ dir, url: `kv:${dir}/jobs.sqlite`, runs: `${dir}/runs.txt` });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function spawnWorker(env: Env, extra: string[] = []): Deno.ChildProcess {
  return spawnWorkerProcess({
    url: env.url,
    jobs: "tests/fixtures/jobs.ts",
    runs: env.runs,
    args: ["--heartbeat-ms", "200", "--poll-ms", "50", ...extra],
  });
}

async function lines(path: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

async function finish(child: Deno.ChildProcess): Promise<{ code: number; out: string }> {
  const output = await child.output();
  const decoder = new TextDecoder();
  return { code: output.code, out: decoder.decode(output.stdout) + decoder.decode(output.stderr) };
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  ...opts,
  name: "two worker processes on one KV file run each of 2,000 jobs exactly once",
  fn: () =>
    withEnv(async (env) => {
      const workers = [
        spawnWorker(env, ["--concurrency", "20"]),
        spawnWorker(env, ["--concurrency", "20"]),
      ];
      const tf = await TaskFlow.open(env.url);
      try {
        for (let i = 0; i < 2_000; i += 250) {
          await tf.enqueueMany(
            Array.from({ length: 250 }, (_, j) => ({ job: "count", args: { n: i + j } })),
          );
        }
        await eventually(
          async () => assert.equal((await tf.counts()).states.Succeeded, 2_000),
          60_000,
        );
        const runs = await lines(env.runs);
        assert.equal(runs.length, 2_000, "every job ran once, none twice");
        assert.equal(new Set(runs.map((l) => l.split(" ")[0])).size, 2_000);
        const pids = new Set(runs.map((l) => l.split(" ")[1]));
        assert.equal(pids.size, 2, "both workers took jobs");
        await assertConsistent(tf.storage);
      } finally {
        for (const w of workers) w.kill("SIGTERM");
        for (const w of workers) assert.equal((await finish(w)).code, 0);
        await tf.close();
      }
    }),
});

Deno.test({
  ...opts,
  name: "a worker killed with SIGKILL mid-job has its job finished by another after lease expiry",
  fn: () =>
    withEnv(async (env) => {
      const tf = await TaskFlow.open(env.url);
      const victim = spawnWorker(env);
      let rescuer: Deno.ChildProcess | undefined;
      try {
        const id = await tf.enqueue("slow", { ms: 1_500 });
        await eventually(async () => assert.equal((await lines(env.runs)).length, 1), 10_000);
        assert.equal((await tf.get(id))!.state, "Processing");
        victim.kill("SIGKILL");
        await victim.output();
        rescuer = spawnWorker(env);
        const done = await eventually(async () => {
          const record = (await tf.get(id))!;
          assert.equal(record.state, "Succeeded");
          return record;
        }, 15_000);
        assert.equal(done.attempt, 2);
        const events = await tf.events(id);
        const reaped = events.find((e) =>
          e.type === "state" && e.state === "Enqueued" && e.seq > 2
        );
        assert.ok(reaped?.type === "state");
        assert.match(reaped.reason!, /stopped heartbeating; lease expired/);
        const runs = await lines(env.runs);
        assert.equal(runs.filter((l) => l.startsWith("start")).length, 2);
        assert.equal(runs.filter((l) => l.startsWith("end")).length, 1);
        await assertConsistent(tf.storage);
      } finally {
        rescuer?.kill("SIGTERM");
        if (rescuer) await finish(rescuer);
        await tf.close();
      }
    }),
});

Deno.test({
  ...opts,
  name: "SIGTERM requeues running jobs with reason 'server shutdown' and removes the server",
  fn: () =>
    withEnv(async (env) => {
      const tf = await TaskFlow.open(env.url);
      const worker = spawnWorker(env, ["--shutdown-timeout-ms", "100"]);
      try {
        const id = await tf.enqueue("slow", { ms: 60_000 });
        await eventually(async () => assert.equal((await tf.get(id))!.state, "Processing"), 10_000);
        assert.equal((await tf.storage.servers()).length, 1);
        worker.kill("SIGTERM");
        const { code, out } = await finish(worker);
        assert.equal(code, 0, out);
        assert.match(out, /signal received, shutting down/);
        const record = (await tf.get(id))!;
        assert.equal(record.state, "Enqueued");
        assert.equal(record.reason, "server shutdown");
        assert.deepEqual(await tf.storage.servers(), []);
      } finally {
        await tf.close();
      }
    }),
});

Deno.test({
  ...opts,
  name: "a job module that fails to import stops start-up with a clear error",
  fn: () =>
    withEnv(async (env) => {
      await Deno.writeTextFile(`${env.dir}/broken.ts`, "export const x = ;\n");
      await Deno.writeTextFile(`${env.dir}/empty.ts`, "export const x = 1;\n");
      for (
        const [module, message] of [
          [
            `${env.dir}/broken.ts`,
            /error \[JOB_MODULE_INVALID\]: job module .*broken\.ts: failed to import/,
          ],
          [`${env.dir}/missing.ts`, /job module .*missing\.ts: failed to import: Module not found/],
          [`${env.dir}/empty.ts`, /job module .*empty\.ts: exports no job definitions/],
        ] as const
      ) {
        const { code, out } = await finish(spawnWorker(env, ["--jobs", module]));
        assert.equal(code, 1);
        assert.match(out, message);
      }
      const { code, out } = await finish(spawnWorker(env, ["--concurrency", "0"]));
      assert.equal(code, 2);
      assert.match(
        out,
        /invalid --concurrency \(TASKFLOW_CONCURRENCY\) "0": must be a whole number, at least 1/,
      );
    }),
});

Deno.test({
  ...opts,
  name: "three worker processes on one KV file create each recurring occurrence exactly once",
  fn: () =>
    withEnv(async (env) => {
      const tf = await TaskFlow.open(env.url);
      await tf.recurring.upsert("every-second", "* * * * * *", "count", null);
      const workers = [spawnWorker(env), spawnWorker(env), spawnWorker(env)];
      try {
        // Until three occurrences exist and the definition records them (its history is written
        // just after each occurrence's job); waiting, not sleeping: three processes starting on a
        // loaded machine can take seconds. Read before the pause, whose write can win the race.
        await eventually(async () => {
          assert.ok((await tf.counts()).totals.created >= 3);
          assert.ok((await tf.recurring.get("every-second"))!.history.length >= 3);
        }, 30_000);
        await tf.recurring.pause("every-second");
        // Every occurrence finished (an Enqueued count of 0 still leaves claimed ones running).
        await eventually(async () => {
          const { states, totals } = await tf.counts();
          assert.equal(states.Succeeded, totals.created);
        }, 10_000);
        const counts = await tf.counts();
        const occurrences = counts.totals.created;
        assert.ok(occurrences >= 3, `only ${occurrences} occurrences`);
        const runs = await lines(env.runs);
        assert.equal(runs.length, occurrences, "each occurrence ran once");
        assert.equal(new Set(runs.map((l) => l.split(" ")[0])).size, occurrences);
        const ids = runs.map((l) => l.split(" ")[0]);
        assert.ok(ids.every((id) => /^recurring:every-second:\d+000$/.test(id)), ids.join(" "));
      } finally {
        for (const w of workers) w.kill("SIGTERM");
        for (const w of workers) await finish(w);
        await tf.close();
      }
    }),
});
