/**
 * @module
 * One worker process of the "several worker processes" scenario (`shapes.ts`): warms up (as
 * many jobs as its second argument says) on a prefix of its own (KV: a file of its own), prints "ready", starts a worker at concurrency 50 on
 * the store named by its argument when it reads a line, and stops when its stdin closes.
 */

import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { openStorage } from "../storage/open.ts";
import type { RedisStorage } from "../storage/redis/mod.ts";

const url = Deno.args[0];
const noop = defineJob("bench.noop", () => {});
const quiet = () => {};

/** Processes `n` no-op jobs on a store of this process's own, for compiled hot paths. */
async function warmUp(n: number): Promise<void> {
  const dir = url.startsWith("kv:") ? await Deno.makeTempDir() : undefined;
  const own = dir ? `kv:${dir}/warm.sqlite` : `${url}-warm-${Deno.pid}`;
  const tf = new TaskFlow(await openStorage(own));
  for (let i = 0; i < n; i += 1_000) {
    const size = Math.min(1_000, n - i);
    await tf.enqueueMany(Array.from({ length: size }, () => ({ job: noop, args: null })));
  }
  const worker = createWorker({
    storage: tf.storage,
    jobs: [noop],
    concurrency: 50,
    logger: quiet,
  });
  await worker.start();
  while ((await tf.counts()).states.Succeeded < n) await new Promise((r) => setTimeout(r, 10));
  await worker.stop();
  if (dir) await Deno.remove(dir, { recursive: true });
  else await (tf.storage as RedisStorage).deleteAllKeys();
  await tf.close();
}

await warmUp(Number(Deno.args[1] ?? 5_000));
const storage = await openStorage(url);
const worker = createWorker({ storage, jobs: [noop], concurrency: 50, logger: quiet });
const lines = Deno.stdin.readable.getReader();
console.log("ready");
await lines.read();
await worker.start();
while (!(await lines.read()).done);
await worker.stop();
await storage.close();
