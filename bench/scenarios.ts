/**
 * @module
 * Benchmark scenarios. Each returns one figure; `bench.ts` runs them interleaved and reports
 * medians. Nothing here asserts a time: the numbers are for people to read and compare.
 */

import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import type { QueueConfigUpdate } from "../lib/queues/config.ts";
import type { RetentionPolicy } from "../lib/retention/policy.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { openStorage } from "../storage/open.ts";
import type { Storage } from "../storage/storage.ts";
import { redisStats } from "./redis_info.ts";
import process from "node:process";

/** A backend under test: how to open a fresh, empty storage of it. */
export interface Backend {
  name: string;
  open(): Promise<{ storage: Storage; url: string; cleanup(): Promise<void> }>;
}

/** One measured figure. */
export interface Figure {
  value: number;
  unit: string;
  /** Extra figures of the same run (p95, p99, ...). */
  extra?: Record<string, number>;
}

const noop = defineJob("bench.noop", () => {});
const quiet = () => {};

/** Backends by name: memory, kv-memory, kv-disk, and redis (when a URL is given). */
export function backends(
  names: string[],
  redisUrl?: string,
  options: { clusterUrl?: string; postgresUrl?: string } = {},
): Backend[] {
  const { postgresUrl } = options;
  const onRedis = (name: string, base?: string): Backend => ({
    name,
    open: async () => {
      const prefix = `bench-${crypto.randomUUID().slice(0, 8)}`;
      const url = `${base}${base?.includes("?") ? "&" : "?"}prefix=${prefix}`;
      const storage = await openStorage(url);
      return { storage, url, cleanup: () => deleteRedisPrefix(url, prefix) };
    },
  });
  const all: Record<string, Backend> = {
    "memory": { name: "memory", open: () => simple("memory:") },
    "kv-memory": { name: "kv :memory:", open: () => simple("kv::memory:") },
    "kv-disk": {
      name: "kv disk",
      open: async () => {
        const dir = await Deno.makeTempDir({ prefix: "taskflow-bench-" });
        const url = `kv:${dir}/bench.sqlite`;
        const storage = await openStorage(url);
        return { storage, url, cleanup: () => Deno.remove(dir, { recursive: true }) };
      },
    },
    "redis": onRedis("redis", redisUrl),
    "redis-cluster": onRedis("redis cluster", options.clusterUrl),
    "postgres": {
      name: "postgres",
      open: async () => {
        const schema = `bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
        const url = `${postgresUrl}${postgresUrl?.includes("?") ? "&" : "?"}schema=${schema}`;
        const storage = await openStorage(url);
        return { storage, url, cleanup: () => dropPostgresSchema(url) };
      },
    },
  };
  return names.map((n) => all[n]).filter((b): b is Backend =>
    b !== undefined && (b.name !== "redis" || !!redisUrl) &&
    (b.name !== "redis cluster" || !!options.clusterUrl) &&
    (b.name !== "postgres" || !!postgresUrl)
  );
}

/** Deletes every key of a benchmark's prefix (SCAN + UNLINK) on a connection of its own. */
async function deleteRedisPrefix(url: string, prefix: string): Promise<void> {
  const { RedisStorage } = await import("../storage/redis/mod.ts");
  const admin = await RedisStorage.open(url);
  try {
    if (admin.prefix !== prefix) throw new Error(`${url} does not name the prefix ${prefix}`);
    await admin.deleteAllKeys();
  } finally {
    await admin.close();
  }
}

/** Drops a benchmark's schema on a connection of its own. */
async function dropPostgresSchema(url: string): Promise<void> {
  const { PostgresStorage } = await import("../storage/postgres/mod.ts");
  const admin = await PostgresStorage.open(url, { poolSize: 1 });
  try {
    await admin.dropSchema();
  } finally {
    await admin.close();
  }
}

async function simple(url: string) {
  return { storage: await openStorage(url), url, cleanup: () => Promise.resolve() };
}

/** Runs `fn` with a client on a fresh storage of `backend`, closed and cleaned up after. */
export async function withClient<T>(
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

/** Awaited single enqueues, one after the other. */
export function enqueueSingle(backend: Backend, n = 2_000): Promise<Figure> {
  return withClient(backend, async (tf) => {
    const started = performance.now();
    for (let i = 0; i < n; i++) await tf.enqueue(noop, { i });
    return { value: n / ((performance.now() - started) / 1_000), unit: "jobs/s" };
  });
}

/** `enqueueMany` in chunks of 1,000. */
export function enqueueBulk(backend: Backend, n = 20_000): Promise<Figure> {
  return withClient(backend, async (tf) => {
    const started = performance.now();
    for (let i = 0; i < n; i += 1_000) {
      await tf.enqueueMany(
        Array.from({ length: 1_000 }, (_, j) => ({ job: noop, args: { i: i + j } })),
      );
    }
    return { value: n / ((performance.now() - started) / 1_000), unit: "jobs/s" };
  });
}

/**
 * No-op jobs processed at `concurrency`, from the first completion to the last (a completion is
 * the Succeeded outcome stored, as BullMQ's "completed" event follows its write).
 */
export function processing(backend: Backend, concurrency: number, n = 20_000): Promise<Figure> {
  return processWith(backend, n, { concurrency });
}

/**
 * `processing` at concurrency 50 with retention on (Succeeded kept 0 s, pruned every 250 ms: as
 * in a steady state, the pruner removes as many jobs as the worker finishes, while it works) or
 * off (`retention: false`: no pruner at all).
 */
export function processingRetention(backend: Backend, on: boolean, n = 20_000): Promise<Figure> {
  return processWith(backend, n, {
    concurrency: 50,
    retention: on ? { succeeded: { maxAgeMs: 0 } } : false,
    pruneIntervalMs: 250,
  });
}

/**
 * `tf.prune()` of `n` finished no-op jobs (processed first by a worker keeping them): pruned
 * jobs per second, and the CPU per pruned job of this process and, on Redis, of Redis.
 */
export function pruneOnly(backend: Backend, n = 10_000): Promise<Figure> {
  return withClient(backend, async (tf, url) => {
    for (let i = 0; i < n; i += 1_000) {
      await tf.enqueueMany(
        Array.from({ length: Math.min(1_000, n - i) }, () => ({ job: noop, args: null })),
      );
    }
    const keepMs = 10 * 86_400_000;
    const worker = createWorker({
      storage: tf.storage,
      jobs: [noop],
      concurrency: 50,
      logger: quiet,
      retention: { succeeded: { maxAgeMs: keepMs } },
    });
    await worker.start();
    while ((await tf.counts()).states.Succeeded < n) await new Promise((r) => setTimeout(r, 20));
    await worker.stop();
    const redis = url.startsWith("redis") ? url : undefined;
    const before = redis ? await redisStats(redis) : undefined;
    const cpu = process.cpuUsage();
    const started = performance.now();
    const { removed } = await tf.prune({ now: Date.now() + 2 * keepMs });
    const seconds = (performance.now() - started) / 1_000;
    const used = process.cpuUsage(cpu);
    const after = redis ? await redisStats(redis) : undefined;
    const extra: Record<string, number> = { cpuUsPerJob: (used.user + used.system) / n };
    if (before && after) extra.redisCpuUsPerJob = (after.cpuSeconds - before.cpuSeconds) * 1e6 / n;
    if (removed.succeeded !== n) throw new Error(`pruned ${removed.succeeded} of ${n} jobs`);
    return { value: n / seconds, unit: "jobs/s", extra };
  });
}

/**
 * `n` no-op jobs processed by one worker at `concurrency`, from the first completion to the
 * last; `limits`, when given, are set on the queue first.
 */
export async function processWith(
  backend: Backend,
  n: number,
  options: {
    concurrency: number;
    retention?: RetentionPolicy | false;
    pruneIntervalMs?: number;
    limits?: QueueConfigUpdate;
  },
): Promise<Figure> {
  const { concurrency, limits, ...retention } = options;
  return await withClient(backend, async (tf, url) => {
    if (limits) await tf.queues.configure("default", limits);
    for (let i = 0; i < n; i += 1_000) {
      await tf.enqueueMany(
        Array.from({ length: Math.min(1_000, n - i) }, () => ({ job: noop, args: null })),
      );
    }
    const timed = timeCompletions(tf.storage, n);
    const worker = createWorker({
      storage: timed.storage,
      jobs: [noop],
      concurrency,
      logger: quiet,
      ...retention,
    });
    const redis = url.startsWith("redis") ? url : undefined;
    const before = redis ? await redisStats(redis) : undefined;
    const cpu = process.cpuUsage();
    await worker.start();
    const { first, last, atFirst } = await timed.done;
    // CPU from the worker's start to its last completion, per job: this process, and Redis's.
    const used = process.cpuUsage(cpu);
    const after = redis ? await redisStats(redis) : undefined;
    const { pruned } = (await tf.counts()).totals;
    await worker.stop();
    // The completions stored with the first one took no measured time: they are not counted.
    const value = (n - atFirst) / ((last - first) / 1_000);
    const extra: Record<string, number> = options.retention === undefined ? {} : { pruned };
    extra.cpuUsPerJob = (used.user + used.system) / n;
    if (before && after) extra.redisCpuUsPerJob = (after.cpuSeconds - before.cpuSeconds) * 1e6 / n;
    return { value, unit: "jobs/s", extra };
  });
}

/**
 * `storage` with its writes timed: when the first and the `n`th Succeeded outcome were stored,
 * and how many were stored by the write that stored the first.
 */
export function timeCompletions(
  storage: Storage,
  n: number,
): { storage: Storage; done: Promise<{ first: number; last: number; atFirst: number }> } {
  let stored = 0, first = 0, atFirst = 0;
  const done = Promise.withResolvers<{ first: number; last: number; atFirst: number }>();
  const append = async (changes: Parameters<Storage["append"]>[0]) => {
    const results = await storage.append(changes);
    const now = performance.now();
    const firstWrite = stored === 0;
    results.forEach((result, i) => {
      if (!result.ok) return;
      for (const commit of changes[i].commits) {
        if (commit.record.state !== "Succeeded") continue;
        if (stored++ === 0) first = now;
        if (firstWrite) atFirst++;
        if (stored === n) done.resolve({ first, last: now, atFirst });
      }
    });
    return results;
  };
  const timed = new Proxy(storage, {
    get(target, property) {
      if (property === "append") return append;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { storage: timed, done: done.promise };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Handler start minus enqueue call, for jobs spaced `gapMs` apart into an idle worker. */
export function idleLatency(backend: Backend, n = 1_000, gapMs = 2): Promise<Figure> {
  return withClient(backend, async (tf) => {
    const sent = new Map<number, number>();
    const latencies: number[] = [];
    const all = Promise.withResolvers<void>();
    const probe = defineJob("bench.probe", (args: { i: number }) => {
      latencies.push(performance.now() - sent.get(args.i)!);
      if (latencies.length === n) all.resolve();
    });
    const worker = createWorker({
      storage: tf.storage,
      jobs: [probe],
      concurrency: 10,
      logger: quiet,
    });
    await worker.start();
    await new Promise((r) => setTimeout(r, 600)); // let the worker go idle
    for (let i = 0; i < n; i++) {
      sent.set(i, performance.now());
      await tf.enqueue(probe, { i });
      await new Promise((r) => setTimeout(r, gapMs));
    }
    await all.promise;
    await worker.stop();
    latencies.sort((a, b) => a - b);
    return {
      value: percentile(latencies, 50),
      unit: "ms p50",
      extra: { p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
    };
  });
}

/** How late delayed jobs start after their due time (1 s delay). */
export function delayedLateness(backend: Backend, n = 200): Promise<Figure> {
  return withClient(backend, async (tf) => {
    const lateness: number[] = [];
    const all = Promise.withResolvers<void>();
    const probe = defineJob("bench.delayed", (args: { due: number }) => {
      lateness.push(Date.now() - args.due);
      if (lateness.length === n) all.resolve();
    });
    const worker = createWorker({
      storage: tf.storage,
      jobs: [probe],
      concurrency: 20,
      logger: quiet,
    });
    await worker.start();
    const start = Date.now() + 1_000;
    for (let i = 0; i < n; i++) {
      const due = start + i * 7; // spread over ~1.4 s
      await tf.schedule(probe, { due }, { at: due });
    }
    await all.promise;
    await worker.stop();
    lateness.sort((a, b) => a - b);
    return {
      value: percentile(lateness, 50),
      unit: "ms p50",
      extra: { p99: percentile(lateness, 99) },
    };
  });
}

/** Enqueue here, run in a `main.ts worker` subprocess: created → Processing event times. */
export function crossProcess(backend: Backend, n = 200): Promise<Figure> {
  return withClient(backend, async (tf, url) => {
    if (url === "memory:" || url === "kv::memory:") return { value: NaN, unit: "ms p50" };
    const root = new URL("..", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "worker", "--storage", url, "--jobs", "examples/jobs.ts"],
      cwd: root,
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await new Promise((r) => setTimeout(r, 2_000));
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        ids.push(await tf.enqueue("demo.noop", null));
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
      }
      while ((await tf.counts()).states.Succeeded < n) await new Promise((r) => setTimeout(r, 20));
      const latencies: number[] = [];
      for (const id of ids) {
        const events = await tf.events(id);
        const created = events.find((e) => e.type === "created")!.at;
        const started = events.find((e) => e.type === "state" && e.state === "Processing")!.at;
        latencies.push(started - created);
      }
      latencies.sort((a, b) => a - b);
      return {
        value: percentile(latencies, 50),
        unit: "ms p50",
        extra: { p99: percentile(latencies, 99) },
      };
    } finally {
      child.kill("SIGTERM");
      await child.status;
    }
  });
}

/** Median response time of dashboard pages with `n` jobs stored. */
export function dashboardAtScale(backend: Backend, n = 100_000): Promise<Record<string, Figure>> {
  return withClient(backend, async (tf) => {
    const { createDashboard } = await import("../lib/dashboard/app.ts");
    for (let i = 0; i < n; i += 1_000) {
      await tf.enqueueMany(Array.from({ length: 1_000 }, (_, j) => ({
        job: j % 3 ? "mail.send" : "report.build",
        args: { i: i + j },
        options: { queue: j % 2 ? "mail" : "default" },
      })));
    }
    // A zero live interval makes every request read storage, as a cold page would.
    const dashboard = createDashboard({ tf, liveIntervalMs: 0 });
    const figures: Record<string, Figure> = {};
    const second = await tf.list({ state: "Enqueued", limit: 50 });
    for (
      const [label, path] of [
        ["overview", "/"],
        ["jobs page", "/jobs/enqueued"],
        ["jobs page 2", `/jobs/enqueued?cursor=${encodeURIComponent(second.cursor ?? "")}&page=2`],
        ["queues", "/queues"],
      ]
    ) {
      const times: number[] = [];
      for (let i = 0; i < 21; i++) {
        const started = performance.now();
        const response = await dashboard.handler(new Request(`http://127.0.0.1:8000${path}`));
        await response.text();
        if (response.status !== 200) throw new Error(`${path} answered ${response.status}`);
        times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      figures[label] = { value: times[10], unit: "ms median", extra: { p90: times[18] } };
    }
    dashboard.close();
    return figures;
  });
}

/** Worker RSS before and after processing `n` no-op jobs (KV file, in a subprocess). */
export async function workerRss(n = 100_000): Promise<Figure> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      new URL("./rss_child.ts", import.meta.url).pathname,
      String(n),
    ],
    stdout: "piped",
    stderr: "inherit",
  });
  const output = await child.output();
  const result = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    before: number;
    after: number;
  };
  return {
    value: (result.after - result.before) / 1_048_576,
    unit: "MB growth",
    extra: { beforeMB: result.before / 1_048_576, afterMB: result.after / 1_048_576 },
  };
}
