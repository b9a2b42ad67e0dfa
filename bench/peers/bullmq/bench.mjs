// BullMQ side of TaskFlow's Redis benchmarks: the same scenarios as TaskFlow's side, on the same
// Redis, each under a queue name of its own (obliterated afterwards).
//
//   node bench.mjs [--url redis://127.0.0.1:6379] [--jobs 20000] [--single 5000] [--only a,b]
//     every scenario (or those named), one JSON line (bench/redis_vs_bullmq.ts)
//   node bench.mjs <enqueueSingle|enqueueBulk|c1|c10|c50> [--quick]   (REDIS_URL in the env)
//     one scenario as {"value": jobs/s} (bench/peers.ts, `deno task bench`); --quick: 1/10 size
//   node bench.mjs footprint [--quick] [--jobs 10000]
//     {"value": bytes per completed job}: `used_memory` delta, completed jobs kept
//
// Scenarios (jobs/s):
//   enqueueSingle  `await queue.add()` one job at a time
//   enqueueMany    `queue.addBulk()` in chunks of 1,000 (enqueueBulk)
//   process10/50   no-op jobs at concurrency 10/50 (c10/c50), from the first completion to the last
//   producers, processes1/2/4, realistic(Wait|Payload), mixed: issue 20's shapes (shapes.mjs)
//   footprint      TaskFlow's `storage footprint`: 10,000 jobs { i, to: "user<i>@example.com" }
//                  returning { ok: i } at concurrency 50, kept (removeOnComplete off, the default)
import { parseArgs } from "node:util";
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";
import { warm } from "../../warm.mjs";
import { shapes } from "./shapes.mjs";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: "string", default: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" },
    jobs: { type: "string" },
    single: { type: "string" },
    quick: { type: "boolean", default: false },
    only: { type: "string" },
  },
});
const scenario = positionals[0];
const scale = values.quick ? 0.1 : 1;
/** Footprint: 10,000 jobs unless --jobs says otherwise. */
const footprintJobs = Number(values.jobs ?? Math.round(10_000 * scale));
values.jobs ??= String(Math.round(20_000 * scale));
values.single ??= String(Math.round((scenario ? 2_000 : 5_000) * scale));
/** Jobs per scenario and single enqueues. */
const size = { jobs: Number(values.jobs), single: Number(values.single) };
const CHUNK = 1_000;
const run = `${process.pid}-${Date.now().toString(36)}`;

function connection() {
  return new IORedis(values.url, { maxRetriesPerRequest: null });
}

async function withQueue(label, fn) {
  const conn = connection();
  const queue = new Queue(`bench-${label}-${run}`, { connection: conn });
  try {
    return await fn(queue, conn);
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
    conn.disconnect();
  }
}

async function addMany(queue, n) {
  for (let i = 0; i < n; i += CHUNK) {
    const size = Math.min(CHUNK, n - i);
    await queue.addBulk(Array.from({ length: size }, (_, j) => ({ name: "noop", data: { i: i + j } })));
  }
}

async function enqueueSingle() {
  return await withQueue("single", async (queue) => {
    const started = performance.now();
    for (let i = 0; i < size.single; i++) await queue.add("noop", { i });
    return size.single / ((performance.now() - started) / 1000);
  });
}

async function enqueueMany() {
  return await withQueue("many", async (queue) => {
    const started = performance.now();
    await addMany(queue, size.jobs);
    return size.jobs / ((performance.now() - started) / 1000);
  });
}

async function processAt(concurrency) {
  return await withQueue(`c${concurrency}`, async (queue) => {
    await addMany(queue, size.jobs);
    let done = 0, first = 0, last = 0;
    const finished = Promise.withResolvers?.() ?? (() => {
      let resolve;
      const promise = new Promise((r) => resolve = r);
      return { promise, resolve };
    })();
    const conn = connection();
    const worker = new Worker(queue.name, async () => {}, { connection: conn, concurrency });
    worker.on("completed", () => {
      const now = performance.now();
      if (done === 0) first = now;
      done++;
      if (done === size.jobs) {
        last = now;
        finished.resolve();
      }
    });
    await finished.promise;
    await worker.close();
    conn.disconnect();
    return size.jobs / ((last - first) / 1000);
  });
}

async function usedMemory(conn) {
  return Number(/used_memory:(\d+)/.exec(await conn.info("memory"))[1]);
}

async function footprint() {
  const n = footprintJobs;
  return await withQueue("footprint", async (queue, conn) => {
    const before = await usedMemory(conn);
    for (let i = 0; i < n; i += CHUNK) {
      await queue.addBulk(Array.from({ length: Math.min(CHUNK, n - i) }, (_, j) => ({
        name: "footprint",
        data: { i: i + j, to: `user${i + j}@example.com` },
      })));
    }
    let done = 0, resolve;
    const finished = new Promise((r) => resolve = r);
    const workerConn = connection();
    const worker = new Worker(queue.name, async (job) => ({ ok: job.data.i }), {
      connection: workerConn,
      concurrency: 50,
    });
    worker.on("completed", () => {
      if (++done === n) resolve();
    });
    await finished;
    await worker.close();
    workerConn.disconnect();
    return (await usedMemory(conn) - before) / n;
  });
}

const one = {
  enqueueSingle,
  enqueueBulk: enqueueMany,
  c1: () => processAt(1),
  c10: () => processAt(10),
  c50: () => processAt(50),
  footprint,
};
const extra = shapes({ url: values.url, run, scale });
/** Issue 20's scenarios: a figure, or {value, ...more figures}. */
for (const [name, fn] of Object.entries(extra)) one[name] = fn;
if (scenario !== undefined) {
  if (!(scenario in one)) {
    console.error(`unknown scenario ${scenario} (known: ${Object.keys(one).join(", ")})`);
    process.exit(2);
  }
  // A footprint is not a speed: one pass, nothing to warm.
  const measure = scenario === "footprint" ? footprint : () => warm(one[scenario]);
  const figure = await measure();
  console.log(JSON.stringify(typeof figure === "number" ? { value: figure } : figure));
} else {
  // Every scenario of bench/redis_vs_bullmq.ts, or those its --only names.
  const all = {
    enqueueSingle,
    enqueueMany,
    process10: () => processAt(10),
    process50: () => processAt(50),
    ...extra,
  };
  const result = { engine: "bullmq" };
  for (const name of values.only?.split(",") ?? Object.keys(all)) result[name] = await warm(all[name]);
  console.log(JSON.stringify(result));
}
