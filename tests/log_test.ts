/**
 * @module
 * Log formats: the default text lines, JSON lines with level, time, message, server id, job id
 * and trace id where known, and the command line's `--log-format` / `TASKFLOW_LOG_FORMAT`.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createLogger, readLogFormat } from "../lib/log/logger.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { InvalidOptionError } from "../storage/errors.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import { eventually } from "./helpers.ts";
import { installSdk } from "./otel_helpers.ts";

const root = new URL("..", import.meta.url).pathname;

Deno.test("text lines stay as they were; JSON lines carry level, time, message, ids", () => {
  const lines: string[] = [];
  const write = (level: string, line: string) => lines.push(`${level} ${line}`);
  createLogger({ write })("warn", "storage error", { jobId: "j1" });
  const json = createLogger({ format: "json", serverId: "host:1:ab", write, now: () => 0 });
  json("error", 'job j2: "quoted"\nnext line', { jobId: "j2" });
  json("info", "started");
  assert.equal(lines[0], "warn [taskflow warn] storage error");
  assert.equal(lines[1].split("\n").length, 1, "one line per message");
  assert.deepEqual(JSON.parse(lines[1].slice("error ".length)), {
    level: "error",
    time: "1970-01-01T00:00:00.000Z",
    message: 'job j2: "quoted"\nnext line',
    serverId: "host:1:ab",
    jobId: "j2",
  });
  assert.deepEqual(Object.keys(JSON.parse(lines[2].slice("info ".length))), [
    "level",
    "time",
    "message",
    "serverId",
  ]);
  for (const bad of ["yaml", 1, null]) {
    assert.throws(() => readLogFormat(bad, "--log-format"), InvalidOptionError);
    assert.throws(() => createLogger({ format: bad as never }), /must be "text" or "json"/);
  }
  assert.equal(readLogFormat(" JSON "), "json");
});

Deno.test("a worker's line about a job names the job and, inside its traced attempt, the trace", async () => {
  const sdk = installSdk();
  const storage = new MemoryStorage();
  const tf = new TaskFlow(storage);
  const lines: Record<string, unknown>[] = [];
  const hold = defineJob("log.hold", async (_: unknown, ctx) => {
    // Ignores its signal for a moment: its outcome comes after the job was deleted.
    await new Promise((resolve) => setTimeout(resolve, 300));
    return ctx.jobId;
  });
  const worker = createWorker({
    storage,
    jobs: [hold],
    pollIntervalMs: 20,
    heartbeatMs: 50,
    recurring: false,
    logger: createLogger({
      format: "json",
      serverId: "w-1",
      write: (_, line) => lines.push(JSON.parse(line)),
    }),
  });
  await worker.start();
  try {
    const id = await tf.enqueue(hold, {});
    await eventually(async () => assert.equal((await tf.get(id))!.state, "Processing"));
    await tf.delete(id);
    const line = await eventually(() => {
      const found = lines.find((l) => l.jobId === id);
      assert.ok(found, JSON.stringify(lines));
      return found;
    });
    assert.match(line.message as string, /outcome discarded/);
    assert.equal(line.level, "warn");
    assert.equal(line.serverId, "w-1");
    const span = await eventually(() => {
      const found = sdk.spans().find((s) => s.name === "process log.hold");
      assert.ok(found);
      return found;
    });
    assert.equal(line.traceId, span.spanContext().traceId);
    assert.equal(span.attributes["taskflow.job.outcome"], "fenced");
  } finally {
    await worker.stop();
    await tf.close();
    await sdk.uninstall();
  }
});

async function runWorker(args: string[], env: Record<string, string>): Promise<string[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "worker", "--storage", "memory:", ...args],
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  child.kill("SIGINT");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  await child.status;
  await child.stderr.cancel();
  return out.split("\n").filter(Boolean);
}

Deno.test("the command line writes JSON lines with --log-format json or TASKFLOW_LOG_FORMAT", async () => {
  const jobs = ["--jobs", "tests/fixtures/jobs.ts"];
  for (
    const [args, env] of [
      [[...jobs, "--log-format", "json"], {}],
      [jobs, { TASKFLOW_LOG_FORMAT: "json" }],
    ] as const
  ) {
    const lines = (await runWorker([...args], env)).map((line) => JSON.parse(line));
    assert.match(lines[0].message, /^TaskFlow worker \S+ on memory:/);
    assert.equal(lines[0].level, "info");
    assert.ok(lines[0].serverId && lines[0].message.includes(lines[0].serverId));
    assert.match(lines.at(-1).message, /stopped$/);
  }
  const text = await runWorker(jobs, {});
  assert.match(
    text[0],
    /^TaskFlow worker /,
    `text stays the default: ${text[0]}`,
  );
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "worker", "--storage", "memory:", "--log-format", "yaml"],
    cwd: root,
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /invalid --log-format .*"yaml"/);
});
