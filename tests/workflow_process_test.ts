/**
 * @module
 * A flow whose producer is killed in the middle of creating it leaves no runnable part of it:
 * a subprocess creates a 2,001-node flow, stops after its third write, and is SIGKILLed; every
 * node written stays Awaiting, and a worker started afterwards runs none of them.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { deletePrefix, REDIS_URL, whenRedis } from "./redis_helpers.ts";

const root = new URL("..", import.meta.url).pathname;
const opts = { sanitizeOps: false, sanitizeResources: false };

/** Runs the producer against `url` until it says "midway", then kills it. */
async function killMidway(url: string): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tests/fixtures/flow_producer.ts", url, "40"],
    cwd: root,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  try {
    while (!output.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      output += value;
    }
    assert.equal(output.trim(), "midway", "the producer stopped in the middle of the flow");
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel().catch(() => {});
  }
}

async function check(url: string): Promise<void> {
  await killMidway(url);
  const tf = await TaskFlow.open(url);
  let ran = 0;
  const step = defineJob("flow.step", () => void ran++);
  const worker = createWorker({
    storage: tf.storage,
    jobs: [step],
    heartbeatMs: 50,
    pollIntervalMs: 20,
    logger: () => {},
  });
  try {
    const counts = await tf.counts();
    const written = counts.totals.created;
    assert.ok(written >= 400 && written < 2_001, `a part of the flow was written: ${written}`);
    assert.equal(counts.states.Awaiting, written, "every node written waits");
    const [flow] = await tf.flows();
    assert.equal(flow.flow.state, "creating");
    assert.equal(flow.flow.total, 2_001);
    // A worker (its claims, and its sweep on its first heartbeats) runs none of it.
    await worker.start();
    await new Promise((r) => setTimeout(r, 1_000));
    await worker.stop();
    const after = await tf.counts();
    assert.equal(ran, 0);
    assert.equal(after.states.Awaiting, written);
    assert.equal(after.totals.succeeded + after.states.Enqueued + after.states.Processing, 0);
  } finally {
    await worker.stop();
    await tf.close();
  }
}

Deno.test({
  ...opts,
  name: "flows: a producer killed mid-flow leaves no runnable part of it (KV file)",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-flow-kill-" });
    try {
      await check(`kv:${dir}/flow.sqlite`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

await whenRedis("flow producer killed (redis)", () => {
  Deno.test({
    ...opts,
    name: "flows: a producer killed mid-flow leaves no runnable part of it (Redis)",
    fn: async () => {
      const prefix = `tf-flowkill-${crypto.randomUUID().slice(0, 8)}`;
      try {
        await check(`${REDIS_URL}?prefix=${prefix}`);
      } finally {
        await deletePrefix(prefix);
      }
    },
  });
});
