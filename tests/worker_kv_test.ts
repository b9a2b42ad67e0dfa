import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { KvStorage } from "../storage/kv/mod.ts";
import { eventually } from "./helpers.ts";
import { runWorkerSuite } from "./worker_suite.ts";

runWorkerSuite("kv :memory:", async () => {
  const storage = await KvStorage.open(":memory:", "kv::memory:");
  return { storage, cleanup: () => storage.close() };
});

runWorkerSuite("kv file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-worker-" });
  const storage = await KvStorage.open(`${dir}/w.sqlite`, `kv:${dir}/w.sqlite`);
  return {
    storage,
    cleanup: async () => {
      await storage.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

Deno.test({
  name:
    "kv: with queue wake-ups on, one message per atomic write; scheduled writes send a delayed one",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-wake-" });
    const spy = await Deno.openKv(`${dir}/q.sqlite`);
    const storage = await KvStorage.open(`${dir}/q.sqlite`, `kv:${dir}/q.sqlite`, {
      queueWakeups: true,
    });
    const messages: Array<{ at: number; message: unknown }> = [];
    const listening = spy.listenQueue((message) => void messages.push({ at: Date.now(), message }));
    try {
      const tf = new TaskFlow(storage);
      await tf.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ job: "x", args: i })));
      await eventually(() => assert.equal(messages.length, 1));
      assert.deepEqual(messages[0].message, { taskflow: "wake" });
      const scheduledAt = Date.now();
      await tf.schedule("x", {}, { delayMs: 300 });
      await eventually(() => assert.equal(messages.length, 2));
      assert.ok(
        messages[1].at - scheduledAt >= 250,
        "the wake-up for a scheduled job is delayed to its due time",
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(messages.length, 2, "one message per write, not one per job");
    } finally {
      await storage.close();
      spy.close();
      await listening;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
