/**
 * @module
 * Issue 20's scenarios, in the shapes users run: many concurrent producers, several worker
 * processes, realistic jobs (payloads and an awaited handler) and a mixed steady load. Shared by
 * `deno task bench` and `bench/redis_vs_bullmq.ts`; BullMQ's side is `peers/bullmq/shapes.mjs`.
 */

import { TaskFlow } from "../lib/client.ts";
import { defineJob, type JobDefinition } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { type Backend, type Figure, timeCompletions } from "./scenarios.ts";
import { redisStats } from "./redis_info.ts";

const quiet = () => {};
const noop = defineJob("bench.noop", () => {});

async function withClient<T>(
  backend: Backend,
  fn: (tf: TaskFlow, url: string) => Promise<T>,
): Promise<T> {
  const { storage, url, cleanup } = await backend.open();
  const tf = new TaskFlow(storage);
  try {
    return await fn(tf, url);
  } finally {
    await tf.close();
    await cleanup();
  }
}

/** `callers` concurrent callers, each awaiting `perCaller` single enqueues one after the other. */
export function concurrentProducers(
  backend: Backend,
  callers = 50,
  perCaller = 400,
): Promise<Figure> {
  return withClient(backend, async (tf) => {
    const started = performance.now();
    await Promise.all(Array.from({ length: callers }, async (_, c) => {
      for (let i = 0; i < perCaller; i++) await tf.enqueue(noop, { c, i });
    }));
    const seconds = (performance.now() - started) / 1_000;
    return { value: (callers * perCaller) / seconds, unit: "jobs/s" };
  });
}

/** A string of `bytes` characters that differs per job (no interning, no run-length luck). */
export function filler(bytes: number, seed: number): string {
  const head = `${seed}:`;
  return head + "abcdefghijklmnopqrstuvwxyz0123456789".repeat(Math.ceil(bytes / 36))
    .slice(0, bytes - head.length);
}

/** The realistic job's shape: `payload` KB-sized args/result or none, an awaited `waitMs`. */
export interface Realistic {
  /** 2 KB args and a 1 KB result when true; `{ i }` and no result when false. */
  payload: boolean;
  /** What the handler awaits (a timer), 0 for none. */
  waitMs: number;
}

/**
 * `n` jobs enqueued beforehand, processed at `concurrency`, first to last completion: 2 KB args,
 * a 1 KB result, a handler awaiting a 5 ms timer (or the parts of it that `shape` keeps).
 */
export function realisticJobs(
  backend: Backend,
  shape: Realistic,
  n = 20_000,
  concurrency = 100,
): Promise<Figure> {
  const result = filler(1_024, 0);
  const job = defineJob("bench.realistic", async (args: { i: number }) => {
    if (shape.waitMs > 0) await new Promise((r) => setTimeout(r, shape.waitMs));
    return shape.payload ? { i: args.i, result } : undefined;
  });
  const args = (i: number) => shape.payload ? { i, body: filler(2_048, i) } : { i };
  return processJobs(backend, job, args, n, concurrency);
}

async function processJobs(
  backend: Backend,
  job: JobDefinition<any, any>,
  args: (i: number) => unknown,
  n: number,
  concurrency: number,
): Promise<Figure> {
  return await withClient(backend, async (tf) => {
    for (let i = 0; i < n; i += 1_000) {
      const size = Math.min(1_000, n - i);
      await tf.enqueueMany(Array.from({ length: size }, (_, j) => ({ job, args: args(i + j) })));
    }
    const timed = timeCompletions(tf.storage, n);
    const worker = createWorker({
      storage: timed.storage,
      jobs: [job],
      concurrency,
      logger: quiet,
    });
    await worker.start();
    const { first, last, atFirst } = await timed.done;
    await worker.stop();
    return { value: (n - atFirst) / ((last - first) / 1_000), unit: "jobs/s" };
  });
}

/**
 * `processes` worker processes (`worker_child.ts`) at concurrency 50 each on one store, `n`
 * no-op jobs enqueued beforehand: total jobs/s from the go to the last completion, and on Redis
 * its CPU and commands per job (from `INFO`, so other clients of a shared Redis add to them).
 */
export function workerProcesses(backend: Backend, processes: number, n = 40_000): Promise<Figure> {
  return withClient(backend, async (tf, url) => {
    if (url === "memory:" || url === "kv::memory:") return { value: NaN, unit: "jobs/s" };
    for (let i = 0; i < n; i += 1_000) {
      const size = Math.min(1_000, n - i);
      await tf.enqueueMany(Array.from({ length: size }, () => ({ job: noop, args: null })));
    }
    const child = new URL("./worker_child.ts", import.meta.url).pathname;
    const children = Array.from({ length: processes }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", child, url, String(Math.ceil(n / 8))],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn());
    try {
      // Each child warms up on a prefix of its own, then says "ready" and waits for the go.
      await Promise.all(children.map((c) => firstLine(c.stdout)));
      const redis = url.startsWith("redis") ? url : undefined;
      const before = redis ? await redisStats(redis) : undefined;
      const started = performance.now();
      const go = new TextEncoder().encode("go\n");
      const writers = children.map((c) => c.stdin.getWriter());
      await Promise.all(writers.map((w) => w.write(go)));
      while ((await tf.counts()).states.Succeeded < n) await new Promise((r) => setTimeout(r, 5));
      const seconds = (performance.now() - started) / 1_000;
      const after = redis ? await redisStats(redis) : undefined;
      await Promise.all(writers.map((w) => w.close()));
      const extra: Record<string, number> = {};
      if (before && after) {
        extra["Redis CPU µs/job"] = (after.cpuSeconds - before.cpuSeconds) * 1e6 / n;
        extra["Redis commands/job"] = (after.calls - before.calls) / n;
      }
      return { value: n / seconds, unit: "jobs/s", extra };
    } finally {
      await Promise.all(children.map((c) => c.status));
    }
  });
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`a worker process ended before it was ready: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text.trim();
}

/**
 * A steady producer at `rate` jobs/s for `seconds`, 10% of them delayed by 100 ms and 5% failing
 * once (retried at once), into a worker at concurrency 50 in the same process: end-to-end
 * latency (handler end minus enqueue call, or minus due time when delayed) p50/p99, and jobs/s
 * from the first enqueue to the last completion.
 */
export function mixedLoad(backend: Backend, rate = 5_000, seconds = 4): Promise<Figure> {
  return withClient(backend, async (tf) => {
    const n = Math.round(rate * seconds);
    const due = new Float64Array(n);
    const latencies: number[] = [];
    const all = Promise.withResolvers<void>();
    const job = defineJob("bench.mixed", (args: { i: number }, ctx) => {
      if (args.i % 20 === 1 && ctx.attempt === 1) throw new Error("fails once");
      latencies.push(performance.now() - due[args.i]);
      if (latencies.length === n) all.resolve();
    }, { attempts: 2, backoff: () => 0 });
    const worker = createWorker({
      storage: tf.storage,
      jobs: [job],
      concurrency: 50,
      logger: quiet,
    });
    await worker.start();
    const tick = 10, perTick = rate * tick / 1_000;
    const started = performance.now();
    const sends: Promise<unknown>[] = [];
    for (let sent = 0; sent < n;) {
      // Ticks on the clock, not on the previous tick: a late tick sends what it owes.
      const owed = Math.min(n, Math.floor((performance.now() - started) / tick + 1) * perTick);
      for (; sent < owed; sent++) {
        const i = sent;
        const delayed = i % 10 === 3;
        due[i] = performance.now() + (delayed ? 100 : 0);
        sends.push(
          delayed ? tf.schedule(job, { i }, { delayMs: 100 }) : tf.enqueue(job, { i }),
        );
      }
      await new Promise((r) => setTimeout(r, tick - ((performance.now() - started) % tick)));
    }
    await Promise.all(sends);
    await all.promise;
    const elapsed = (performance.now() - started) / 1_000;
    await worker.stop();
    latencies.sort((a, b) => a - b);
    const at = (p: number) => latencies[Math.min(n - 1, Math.floor(p / 100 * n))];
    return {
      value: at(50),
      unit: "ms p50",
      extra: { p99: at(99), "jobs/s": n / elapsed },
    };
  });
}
