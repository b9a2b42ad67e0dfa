/**
 * @module
 * A KV file whose only process was SIGKILLed mid-load: reopened, it has every acknowledged job,
 * its projections agree with its event logs, and a new worker finishes the work.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { assertConsistent, eventually } from "./helpers.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

Deno.test({
  name: "kv: reopened after SIGKILL of its only process, nothing acknowledged is lost",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-reopen-" });
    const url = `kv:${dir}/only.sqlite`;
    try {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "tests/fixtures/kv_writer.ts", url],
        cwd: root,
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const acknowledged: string[] = [];
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      while (acknowledged.length < 1_500) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const lines = buffer.split("\n");
        buffer = lines.pop()!;
        acknowledged.push(...lines.filter(Boolean));
      }
      child.kill("SIGKILL");
      await child.status;
      await reader.cancel().catch(() => {});

      const tf = await TaskFlow.open(url);
      try {
        const records = await tf.storage.getMany(acknowledged);
        assert.equal(
          records.filter((r) => r === null).length,
          0,
          "every acknowledged job is there",
        );
        await assertConsistent(tf.storage);
        const job = defineJob("reopen.job", () => {});
        const worker = createWorker({
          storage: tf.storage,
          jobs: [job],
          heartbeatMs: 100,
          logger: () => {},
        });
        await worker.start();
        await eventually(async () => {
          const counts = await tf.counts();
          assert.equal(counts.states.Enqueued + counts.states.Processing, 0);
        }, 60_000);
        await worker.stop();
        const counts = await tf.counts();
        assert.equal(
          counts.states.Succeeded,
          counts.totals.created,
          "the killed worker's jobs were reaped and run",
        );
        await assertConsistent(tf.storage);
      } finally {
        await tf.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
