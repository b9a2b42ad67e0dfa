// BullMQ side of issue 20's scenarios (TaskFlow's side: bench/shapes.ts), on the same Redis,
// each under a queue of its own (obliterated afterwards). BullMQ's best configuration for the
// same jobs in flight: one Queue (one ioredis connection, which pipelines every caller's
// command back to back) for the producers, one Worker per process at the same concurrency, the
// default job options (completed jobs kept, as TaskFlow keeps them).
//
//   producers          50 callers × 400 awaited `queue.add()` (--single sets the 400)
//   processes1/2/4     1, 2, 4 Node processes (this file as `worker <queue>`), Worker at c=50
//   realistic          2 KB args, 1 KB result, `await` a 5 ms timer, c=100; realisticWait: no
//                      payloads; realisticPayload: no timer
//   mixed              5,000 jobs/s for 4 s, 10% delayed 100 ms, 5% failing once, c=50:
//                      {value: p50 ms, p99, jobsPerSecond}
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

const quiet = () => {};

export function shapes({ url, run, scale }) {
  const connection = () => new IORedis(url, { maxRetriesPerRequest: null });
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
  async function addMany(queue, n, data) {
    for (let i = 0; i < n; i += 1_000) {
      const size = Math.min(1_000, n - i);
      await queue.addBulk(Array.from({ length: size }, (_, j) => ({ name: "job", data: data(i + j) })));
    }
  }

  async function producers(callers = 50, perCaller = Math.round(400 * scale)) {
    return await withQueue("producers", async (queue) => {
      const started = performance.now();
      await Promise.all(Array.from({ length: callers }, async (_, c) => {
        for (let i = 0; i < perCaller; i++) await queue.add("noop", { c, i });
      }));
      return (callers * perCaller) / ((performance.now() - started) / 1000);
    });
  }

  /** First to last completion of `n` jobs enqueued beforehand, as TaskFlow's side. */
  async function processJobs(label, n, data, handler, concurrency) {
    return await withQueue(label, async (queue) => {
      await addMany(queue, n, data);
      let done = 0, first = 0, last = 0;
      const finished = resolvers();
      const conn = connection();
      const worker = new Worker(queue.name, handler, { connection: conn, concurrency });
      worker.on("completed", () => {
        const now = performance.now();
        if (done++ === 0) first = now;
        if (done === n) (last = now, finished.resolve());
      });
      await finished.promise;
      await worker.close();
      conn.disconnect();
      return n / ((last - first) / 1000);
    });
  }

  function realistic(payload, waitMs, n = Math.round(20_000 * scale)) {
    const result = filler(1_024, 0);
    const handler = async (job) => {
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      return payload ? { i: job.data.i, result } : undefined;
    };
    const data = (i) => payload ? { i, body: filler(2_048, i) } : { i };
    return processJobs("realistic", n, data, handler, 100);
  }

  async function processes(count, n = Math.round(40_000 * scale)) {
    return await withQueue(`processes${count}`, async (queue, conn) => {
      await addMany(queue, n, () => null);
      const file = new URL(import.meta.url).pathname;
      const children = Array.from({ length: count }, () =>
        spawn(process.execPath, [file, "worker", queue.name, url, String(Math.ceil(n / 8))], { stdio: ["pipe", "pipe", "inherit"] }));
      const ready = children.map((child) => new Promise((resolve) =>
        createInterface({ input: child.stdout }).once("line", resolve)));
      await Promise.all(ready);
      const before = await redisStats(conn);
      const started = performance.now();
      for (const child of children) child.stdin.write("go\n");
      while (await queue.getCompletedCount() < n) await new Promise((r) => setTimeout(r, 5));
      const seconds = (performance.now() - started) / 1000;
      const after = await redisStats(conn);
      const exits = children.map((child) => new Promise((resolve) => child.once("exit", resolve)));
      for (const child of children) child.stdin.end();
      await Promise.all(exits);
      return {
        value: n / seconds,
        "Redis CPU µs/job": (after.cpuSeconds - before.cpuSeconds) * 1e6 / n,
        "Redis commands/job": (after.calls - before.calls) / n,
      };
    });
  }

  async function mixed(rate = 5_000, seconds = 4 * scale) {
    return await withQueue("mixed", async (queue) => {
      const n = Math.round(rate * seconds);
      const due = new Float64Array(n);
      const latencies = [];
      const all = resolvers();
      const conn = connection();
      const worker = new Worker(queue.name, async (job) => {
        if (job.data.i % 20 === 1 && job.attemptsMade === 0) throw new Error("fails once");
        latencies.push(performance.now() - due[job.data.i]);
        if (latencies.length === n) all.resolve();
      }, { connection: conn, concurrency: 50 });
      worker.on("error", quiet);
      const tick = 10, perTick = rate * tick / 1000;
      const started = performance.now();
      const sends = [];
      for (let sent = 0; sent < n;) {
        const owed = Math.min(n, Math.floor((performance.now() - started) / tick + 1) * perTick);
        for (; sent < owed; sent++) {
          const delayed = sent % 10 === 3;
          due[sent] = performance.now() + (delayed ? 100 : 0);
          const options = { attempts: 2, ...(delayed ? { delay: 100 } : {}) };
          sends.push(queue.add("mixed", { i: sent }, options));
        }
        await new Promise((r) => setTimeout(r, tick - ((performance.now() - started) % tick)));
      }
      await Promise.all(sends);
      await all.promise;
      const elapsed = (performance.now() - started) / 1000;
      await worker.close();
      conn.disconnect();
      latencies.sort((a, b) => a - b);
      const at = (p) => latencies[Math.min(n - 1, Math.floor(p / 100 * n))];
      return { value: at(50), p99: at(99), "jobs/s": n / elapsed };
    });
  }

  return {
    producers,
    processes1: () => processes(1),
    processes2: () => processes(2),
    processes4: () => processes(4),
    realistic: () => realistic(true, 5),
    realisticWait: () => realistic(false, 5),
    realisticPayload: () => realistic(true, 0),
    mixed,
  };
}

/** As TaskFlow's `filler`: `bytes` characters that differ per job. */
function filler(bytes, seed) {
  const head = `${seed}:`;
  return head + "abcdefghijklmnopqrstuvwxyz0123456789".repeat(Math.ceil(bytes / 36)).slice(0, bytes - head.length);
}

async function redisStats(conn) {
  const text = (await conn.info("cpu")) + (await conn.info("commandstats"));
  const field = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(text)?.[1]);
  let calls = 0;
  for (const match of text.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) calls += Number(match[1]);
  return { cpuSeconds: field("used_cpu_user") + field("used_cpu_sys"), calls };
}

/** A worker process: warms up (`warmN` jobs) on a queue of its own, says "ready", runs on "go", ends on EOF. */
async function workerProcess(name, url, warmN) {
  const connection = () => new IORedis(url, { maxRetriesPerRequest: null });
  const warmConn = connection();
  const warmQueue = new Queue(`${name}-warm-${process.pid}`, { connection: warmConn });
  for (let i = 0; i < warmN; i += 1_000) {
    const size = Math.min(1_000, warmN - i);
    await warmQueue.addBulk(Array.from({ length: size }, () => ({ name: "noop", data: null })));
  }
  let warmed = 0;
  const warmDone = resolvers();
  const warmConn2 = connection();
  const warmWorker = new Worker(warmQueue.name, async () => {}, { connection: warmConn2, concurrency: 50 });
  warmWorker.on("completed", () => ++warmed === warmN && warmDone.resolve());
  await warmDone.promise;
  await warmWorker.close();
  await warmQueue.obliterate({ force: true });
  await warmQueue.close();
  warmConn.disconnect();
  warmConn2.disconnect();

  const conn = connection();
  const worker = new Worker(name, async () => {}, { connection: conn, concurrency: 50, autorun: false });
  const lines = createInterface({ input: process.stdin });
  lines.once("line", () => worker.run());
  lines.once("close", async () => {
    await worker.close();
    conn.disconnect();
    process.exit(0);
  });
  console.log("ready");
}

if (process.argv[2] === "worker") await workerProcess(process.argv[3], process.argv[4], Number(process.argv[5]));

/** Promise.withResolvers, which Node 20 lacks. */
function resolvers() {
  let resolve, reject;
  const promise = new Promise((yes, no) => (resolve = yes, reject = no));
  return { promise, resolve, reject };
}
