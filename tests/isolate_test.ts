/**
 * @module
 * Isolated jobs: handlers in a pool of Web Workers, with the context, errors, aborts and shutdown
 * working across the boundary as on the event loop; and, with real worker processes, a handler
 * that computes for longer than three leases is reaped on the event loop but not when isolated.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob, type JobDefinition } from "../lib/job.ts";
import { createWorker, type WorkerOptions } from "../lib/worker/worker.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import { InvalidOptionError } from "../storage/errors.ts";
import * as jobs from "./fixtures/isolate_jobs.ts";
import { eventually, spawnWorkerProcess } from "./helpers.ts";

const FIXTURE = new URL("./fixtures/isolate_jobs.ts", import.meta.url).href;

/** Runs `fn` with a started worker on memory storage; stops it (and its Web Workers) after. */
async function withWorker(
  options: Partial<WorkerOptions>,
  fn: (tf: TaskFlow) => Promise<void>,
): Promise<void> {
  const storage = new MemoryStorage();
  const tf = new TaskFlow(storage);
  const worker = createWorker({
    storage,
    jobs,
    pollIntervalMs: 20,
    heartbeatMs: 100,
    shutdownTimeoutMs: 200,
    recurring: false,
    ...options,
  });
  await worker.start();
  try {
    await fn(tf);
  } finally {
    await worker.stop();
    await tf.close();
  }
}

async function settled(tf: TaskFlow, id: string, state: string, timeoutMs = 30_000) {
  return await eventually(async () => {
    const record = (await tf.get(id))!;
    assert.equal(record.state, state, `${record.name}: ${record.reason ?? ""}`);
    return record;
  }, timeoutMs);
}

/** Waits until job `id` logged `line` (its handler runs in a Web Worker by then). */
async function logged(tf: TaskFlow, id: string, line: string): Promise<void> {
  await eventually(async () => {
    assert.ok((await tf.events(id)).some((e) => e.type === "log" && e.message === line));
  }, 30_000);
}

Deno.test("an isolated handler runs in a Web Worker with jobId, name, attempt, log and progress", () =>
  withWorker({}, async (tf) => {
    const id = await tf.enqueue(jobs.echo, { n: 7 });
    const record = await settled(tf, id, "Succeeded");
    assert.deepEqual(record.result, {
      args: { n: 7 },
      jobId: id,
      name: "iso.echo",
      attempt: 1,
      refused: "InvalidOptionError INVALID_OPTION",
      inWorker: "function",
    });
    const events = await tf.events(id);
    assert.deepEqual(
      events.filter((e) => e.type === "log").map((e) => e.type === "log" && e.message),
      ["hello from iso.echo attempt 1"],
    );
    assert.equal(record.progress, 50);
  }));

Deno.test("an isolated handler snoozes by ctx.snooze or SnoozeError without spending an attempt", () =>
  withWorker({}, async (tf) => {
    const file = await Deno.makeTempFile();
    try {
      const id = await tf.enqueue(jobs.snooze, { file });
      const record = await settled(tf, id, "Succeeded");
      assert.deepEqual(record.result, { attempt: 1, runs: 3 });
      const reasons = (await tf.events(id)).flatMap((e) =>
        e.type === "state" && e.state === "Scheduled" ? [e.reason] : []
      );
      assert.deepEqual(reasons, [
        "snoozed for 20 ms by the handler",
        "snoozed for 30 ms by the handler",
      ]);
    } finally {
      await Deno.remove(file);
    }
  }));

/** A copy of `definition` that runs on the event loop. */
function onLoop(definition: JobDefinition<any, any>): JobDefinition<any, any> {
  return defineJob(definition.name, definition.handler, { ...definition.defaults, isolate: false });
}

Deno.test("errors cross with their name, message and code, and decide retries as on the event loop", async () => {
  const failing = [jobs.flaky, jobs.discard, jobs.invalid, jobs.badResult];
  const outcomes = async (isolated: boolean) => {
    const seen: unknown[] = [];
    await withWorker({ jobs: isolated ? failing : failing.map(onLoop) }, async (tf) => {
      for (const job of failing) {
        const id = await tf.enqueue(job, null);
        const end = job === jobs.flaky ? "Succeeded" : "Failed";
        const record = await settled(tf, id, end);
        const errors = (await tf.events(id)).flatMap((e) =>
          e.type === "state" && e.data?.error ? [e.data.error] : []
        );
        if (job !== jobs.badResult) assert.match(errors[0].stack ?? "", /isolate_jobs\.ts/);
        seen.push({
          name: job.name,
          state: record.state,
          attempt: record.attempt,
          result: record.result,
          errors: errors.map(({ name, message, code }) => ({ name, message, code })),
        });
      }
    });
    return seen;
  };
  const isolated = await outcomes(true);
  assert.deepEqual(isolated, await outcomes(false));
  assert.deepEqual(isolated[0], {
    name: "iso.flaky",
    state: "Succeeded",
    attempt: 2,
    result: "second",
    errors: [{ name: "RangeError", message: "first attempt fails", code: "E_FLAKY" }],
  });
  assert.deepEqual(
    isolated.slice(1).map((o) => (o as { errors: { code: string }[] }).errors[0].code),
    ["JOB_DISCARDED", "INVALID_OPTION", "ARGS_NOT_SERIALIZABLE"],
  );
});

Deno.test("a timeout terminates a Web Worker that never yields, and a new one runs the next job", () =>
  withWorker({ concurrency: 1, isolateWorkers: 1 }, async (tf) => {
    const spin = await tf.enqueue(jobs.spin, null, { timeoutMs: 300, attempts: 1 });
    const failed = await settled(tf, spin, "Failed");
    assert.equal(failed.error?.code, "JOB_TIMEOUT");
    const next = await tf.enqueue(jobs.echo, { n: 1 });
    assert.equal((await settled(tf, next, "Succeeded")).attempt, 1);
  }));

Deno.test("timeoutMs counts from when a Web Worker takes the job, not from the claim", () =>
  withWorker({ queues: ["default", "cpu"], concurrency: 6, isolateWorkers: 1 }, async (tf) => {
    // The Web Worker has loaded the module once this job is done.
    await settled(tf, await tf.enqueue(jobs.echo, { n: 0 }), "Succeeded");
    // Six jobs of 300 ms share it: the last waits 1.5 s, longer than its timeout.
    const ids = [];
    for (let i = 0; i < 6; i++) {
      ids.push(await tf.enqueue(jobs.cpuIsolated, { ms: 300 }, { timeoutMs: 1_000, attempts: 1 }));
    }
    for (const id of ids) await settled(tf, id, "Succeeded");
  }));

Deno.test("deleting a running isolated job fires its signal in the Web Worker (which may write files)", async () => {
  const file = await Deno.makeTempFile();
  try {
    await withWorker({}, async (tf) => {
      const id = await tf.enqueue(jobs.awaitAbort, { file });
      await logged(tf, id, "waiting");
      await tf.delete(id);
      const text = await eventually(async () => {
        const text = await Deno.readTextFile(file);
        assert.notEqual(text, "");
        return text;
      }, 30_000);
      assert.match(text, /^Error: the job was deleted/);
    });
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("deleting a job that never yields terminates its Web Worker", () =>
  withWorker({ concurrency: 1, isolateWorkers: 1 }, async (tf) => {
    const id = await tf.enqueue(jobs.spin, null);
    await logged(tf, id, "spinning");
    await tf.delete(id);
    const next = await tf.enqueue(jobs.echo, { n: 2 });
    await settled(tf, next, "Succeeded");
  }));

Deno.test("stopping the worker aborts a job that never yields, and requeues it", async () => {
  const storage = new MemoryStorage();
  const tf = new TaskFlow(storage);
  const worker = createWorker({ storage, jobs, pollIntervalMs: 20, shutdownTimeoutMs: 100 });
  await worker.start();
  try {
    const id = await tf.enqueue(jobs.spin, null);
    const busy = await tf.enqueue(jobs.echo, { n: 3 });
    await settled(tf, busy, "Succeeded");
    await settled(tf, id, "Processing");
    await worker.stop();
    const record = (await tf.get(id))!;
    assert.equal(record.state, "Enqueued");
    assert.equal(record.reason, "server shutdown");
  } finally {
    await tf.close();
  }
});

Deno.test({
  name: "stop() terminates every Web Worker: a process that ran isolated jobs ends by itself",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./fixtures/isolate_stop.ts", import.meta.url).pathname],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = await Promise.race([
      child.output(),
      new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), 30_000)),
    ]);
    clearTimeout(timer);
    if (!ended) {
      child.kill("SIGKILL");
      await child.status;
    }
    assert.ok(ended, "the process is still running 30 s after stop(): a Web Worker outlived it");
    assert.equal(new TextDecoder().decode(ended.stdout), "stopped\n");
  },
});

Deno.test("a rejection nobody handles fails the job, not the worker", () =>
  withWorker({ concurrency: 1, isolateWorkers: 1, logger: () => {} }, async (tf) => {
    const id = await tf.enqueue(jobs.unhandled, null);
    const failed = await settled(tf, id, "Failed");
    assert.equal(failed.error!.message, "nobody awaits me");
    assert.match(failed.error!.stack!, /isolate_jobs\.ts/);
    await settled(tf, await tf.enqueue(jobs.echo, { n: 4 }), "Succeeded");
  }));

Deno.test("a job its module does not define, or a module that cannot load, fails with JOB_MODULE_INVALID naming the job", async () => {
  const absent = defineJob("iso.absent", () => 1, { isolate: true, module: FIXTURE });
  const missing = defineJob("iso.missing-module", () => 1, {
    isolate: true,
    module: new URL("./fixtures/no_such_module.ts", import.meta.url),
  });
  await withWorker({ jobs: [absent, missing] }, async (tf) => {
    for (const job of [absent, missing]) {
      const record = await settled(tf, await tf.enqueue(job, null), "Failed");
      assert.equal(record.attempt, 1, "not retried: it can never run");
      assert.equal(record.error?.code, "JOB_MODULE_INVALID");
      assert.equal(record.error?.name, "JobModuleError");
      assert.ok(record.error?.message.includes(`"${job.name}"`), record.error?.message);
    }
  });
});

Deno.test("a module that creates a worker as a Web Worker imports it fails its job, naming the fix", async () => {
  const { selfish } = await import("./fixtures/isolate_starts_worker.ts");
  await withWorker({ jobs: [selfish] }, async (tf) => {
    const record = await settled(tf, await tf.enqueue(selfish, null), "Failed");
    assert.equal(record.error?.code, "JOB_MODULE_INVALID");
    assert.match(
      record.error!.message,
      /"iso\.selfish".*must not create a worker.*import\.meta\.main/,
    );
  });
});

Deno.test("isolate: true on the worker runs every job isolated, importing isolateModule, except isolate: false", () =>
  withWorker(
    {
      isolate: true,
      isolateModule: "tests/fixtures/isolate_jobs.ts",
      jobs: [jobs.where, jobs.whereLoop],
    },
    async (tf) => {
      const isolated = await settled(tf, await tf.enqueue(jobs.where, null), "Succeeded");
      const loop = await settled(tf, await tf.enqueue(jobs.whereLoop, null), "Succeeded");
      assert.equal(isolated.result, "function");
      assert.equal(loop.result, "undefined");
    },
  ));

Deno.test("isolate options are checked where they are given", () => {
  assert.throws(
    () => defineJob("x", () => 1, { isolate: true }),
    (e) =>
      e instanceof InvalidOptionError && /job "x" is isolated.*import\.meta\.url/.test(e.message),
  );
  assert.throws(() => defineJob("x", () => 1, { module: "jobs.ts" }), /absolute module URL/);
  assert.throws(() => defineJob("x", () => 1, { isolate: "yes" as never }), /true or false/);
  assert.throws(
    () => createWorker({ jobs: [jobs.where], isolate: true }),
    (e) => e instanceof InvalidOptionError && /"where".*isolateModule/.test(e.message),
  );
  assert.throws(() => createWorker({ jobs: [], isolateWorkers: 0 }), /isolateWorkers 0/);
  const worker = createWorker({ jobs: [jobs.echo], concurrency: 1 });
  assert.equal(worker.jobNames.length, 1);
});

// With real processes: the worker running the job in one, a worker that only reaps in another.
// A lease is three heartbeats of 300 ms; the job computes for about four and a half leases.
const HEARTBEAT_MS = 300;
const CPU_MS = 4_000;

async function runCpuJob(
  job: typeof jobs.cpuLoop,
  until: (events: unknown[]) => void,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-isolate-" });
  const url = `kv:${dir}/jobs.sqlite`;
  const child = spawnWorkerProcess({
    url,
    jobs: "tests/fixtures/isolate_jobs.ts",
    runs: `${dir}/runs.txt`,
    args: ["--queues", "cpu", "--concurrency", "1", "--heartbeat-ms", `${HEARTBEAT_MS}`],
    output: "null",
  });
  const tf = await TaskFlow.open(url);
  const reaper = createWorker({
    storage: tf.storage,
    jobs: [],
    queues: ["none"],
    heartbeatMs: HEARTBEAT_MS,
    recurring: false,
    logger: () => {},
  });
  try {
    await reaper.start();
    const id = await tf.enqueue(job, { ms: CPU_MS });
    await eventually(async () => until(await tf.events(id)), 30_000);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await reaper.stop();
    await tf.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const reaped = (events: unknown[]) =>
  (events as { type: string; state?: string; reason?: string }[]).filter((e) =>
    e.type === "state" && e.state === "Enqueued" && /stopped heartbeating/.test(e.reason ?? "")
  );

Deno.test({
  name: "a handler computing for longer than three leases is reaped from the event loop",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => runCpuJob(jobs.cpuLoop, (events) => assert.ok(reaped(events).length >= 1)),
});

Deno.test({
  name: "the same handler isolated finishes on its first attempt and is never reaped",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    runCpuJob(jobs.cpuIsolated, (events) => {
      const last = events.at(-1) as { state?: string; data?: { result?: { attempt: number } } };
      assert.equal(last.state, "Succeeded");
      assert.equal(last.data?.result?.attempt, 1);
      assert.deepEqual(reaped(events), []);
    }),
});

Deno.test({
  name: "cli: --isolate N runs every job of the --jobs module in Web Workers; a bad N exits 2",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-isolate-cli-" });
    const url = `kv:${dir}/jobs.sqlite`;
    const spawn = (isolate: string) =>
      spawnWorkerProcess({
        url,
        jobs: "tests/fixtures/isolate_jobs.ts",
        runs: `${dir}/runs.txt`,
        args: ["--isolate", isolate, "--poll-ms", "50"],
      });
    const tf = await TaskFlow.open(url);
    const child = spawn("1");
    try {
      const isolated = await settled(tf, await tf.enqueue(jobs.where, null), "Succeeded");
      const loop = await settled(tf, await tf.enqueue(jobs.whereLoop, null), "Succeeded");
      assert.deepEqual([isolated.result, loop.result], ["function", "undefined"]);
      const bad = await spawn("two").output();
      assert.equal(bad.code, 2);
      assert.match(new TextDecoder().decode(bad.stderr), /--isolate \(TASKFLOW_ISOLATE\) "two"/);
    } finally {
      child.kill("SIGTERM");
      await child.output();
      await tf.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
