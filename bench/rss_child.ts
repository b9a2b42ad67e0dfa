/**
 * @module
 * Subprocess of the RSS scenario: a worker on a KV file processes n no-op jobs in batches of
 * 1,000; prints RSS after warm-up and at the end (after a GC), as JSON. KV keeps the jobs on
 * disk, so growth here is the worker's own (the memory backend would count its data too).
 */

import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { openStorage } from "../storage/open.ts";

const n = Number(Deno.args[0] ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const dir = await Deno.makeTempDir({ prefix: "taskflow-rss-" });
const tf = new TaskFlow(await openStorage(`kv:${dir}/rss.sqlite`));
let done = 0;
let batchDone = Promise.withResolvers<void>();
let target = 0;
const job = defineJob("rss.noop", () => {
  if (++done === target) batchDone.resolve();
});
const worker = createWorker({
  storage: tf.storage,
  jobs: [job],
  concurrency: 50,
  logger: () => {},
});
await worker.start();
async function run(count: number) {
  for (let i = 0; i < count; i += 1_000) {
    target = done + 1_000;
    batchDone = Promise.withResolvers<void>();
    await tf.enqueueMany(Array.from({ length: 1_000 }, () => ({ job, args: null })));
    await batchDone.promise;
  }
}
await run(5_000); // warm-up: JIT, caches, pools
gc();
const before = Deno.memoryUsage().rss;
await run(n);
gc();
await new Promise((r) => setTimeout(r, 200));
gc();
const after = Deno.memoryUsage().rss;
await worker.stop();
await tf.close();
await Deno.remove(dir, { recursive: true });
console.log(JSON.stringify({ before, after }));
