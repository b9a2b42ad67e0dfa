/**
 * @module
 * TaskFlow on Redis side by side with BullMQ 6 on the same Redis, in one run: no-op jobs/s at
 * concurrency 10 and 50 (first to last completion), and enqueue jobs/s (one awaited enqueue at
 * a time, and enqueueMany in chunks of 1,000). Each side runs in a fresh process per round and
 * measures every scenario after an unmeasured pass at full size (bench/warm.mjs), rounds
 * interleave the two engines (alternating which goes first), and medians are printed.
 *
 * ```sh
 * (cd bench/peers/bullmq && npm ci)
 * deno run -A bench/redis_vs_bullmq.ts [--url redis://127.0.0.1:6379] [--rounds 3]
 *   [--jobs 20000] [--single 5000]
 * ```
 */

import { parseArgs } from "node:util";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { RedisStorage } from "../storage/redis/mod.ts";
import { warm } from "./warm.mjs";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    url: { type: "string", default: "redis://127.0.0.1:6379" },
    rounds: { type: "string", default: "3" },
    jobs: { type: "string", default: "20000" },
    single: { type: "string", default: "5000" },
    side: { type: "string" },
    only: { type: "string" },
  },
});
/** Jobs per scenario and single enqueues. */
const size = { jobs: Number(values.jobs), single: Number(values.single) };
const CHUNK = 1_000;
const SCENARIOS = ["enqueueSingle", "enqueueMany", "process10", "process50"] as const;
type Result = Record<(typeof SCENARIOS)[number], number> & { engine: string };

const noop = defineJob("noop", () => {});

/** Runs `fn` on a storage under a fresh prefix, deleting its keys afterwards. */
async function withPrefix<T>(label: string, fn: (tf: TaskFlow) => Promise<T>): Promise<T> {
  const prefix = `bench-${label}-${Deno.pid}-${Date.now().toString(36)}`;
  const tf = await TaskFlow.open(`${values.url}?prefix=${prefix}`);
  try {
    return await fn(tf);
  } finally {
    const redis = tf.storage as RedisStorage;
    await redis.deleteAllKeys();
    await tf.close();
  }
}

async function addMany(tf: TaskFlow, n: number): Promise<void> {
  for (let i = 0; i < n; i += CHUNK) {
    const size = Math.min(CHUNK, n - i);
    await tf.enqueueMany(
      Array.from({ length: size }, (_, j) => ({ job: noop, args: { i: i + j } })),
    );
  }
}

function enqueueSingle(): Promise<number> {
  return withPrefix("single", async (tf) => {
    const started = performance.now();
    for (let i = 0; i < size.single; i++) await tf.enqueue(noop, { i });
    return size.single / ((performance.now() - started) / 1000);
  });
}

function enqueueMany(): Promise<number> {
  return withPrefix("many", async (tf) => {
    const started = performance.now();
    await addMany(tf, size.jobs);
    return size.jobs / ((performance.now() - started) / 1000);
  });
}

function processAt(concurrency: number): Promise<number> {
  return withPrefix(`c${concurrency}`, async (tf) => {
    await addMany(tf, size.jobs);
    const worker = createWorker({ storage: tf.storage, jobs: [noop], concurrency });
    await worker.start();
    let first = 0, atFirst = 0;
    const last = await new Promise<number>((resolve) => {
      const timer = setInterval(() => {
        const done = worker.stats.succeeded;
        if (done > 0 && first === 0) [first, atFirst] = [performance.now(), done];
        if (done >= size.jobs) {
          clearInterval(timer);
          resolve(performance.now());
        }
      }, 1);
    });
    await worker.stop();
    // The completions seen at the first look took no measured time: they are not counted.
    return (size.jobs - atFirst) / ((last - first) / 1000);
  });
}

/** The TaskFlow side: every scenario, or those named by `--only` (comma-separated). */
async function taskflowSide(): Promise<Partial<Result>> {
  const runs: Record<(typeof SCENARIOS)[number], () => Promise<number>> = {
    enqueueSingle,
    enqueueMany,
    process10: () => processAt(10),
    process50: () => processAt(50),
  };
  const only = values.only?.split(",") ?? SCENARIOS;
  const result: Partial<Result> = { engine: "taskflow" };
  for (const scenario of SCENARIOS) {
    if (only.includes(scenario)) result[scenario] = await warm(runs[scenario]);
  }
  return result;
}

async function runSide(engine: "taskflow" | "bullmq"): Promise<Result> {
  const root = new URL("..", import.meta.url).pathname;
  const common = [
    "--url",
    values.url!,
    "--jobs",
    String(size.jobs),
    "--single",
    String(size.single),
  ];
  const command = engine === "taskflow"
    ? new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "bench/redis_vs_bullmq.ts", "--side", "taskflow", ...common],
      cwd: root,
      stdout: "piped",
      stderr: "inherit",
    })
    : new Deno.Command("node", {
      args: ["bench.mjs", ...common],
      cwd: `${root}bench/peers/bullmq`,
      stdout: "piped",
      stderr: "inherit",
    });
  const output = await command.output();
  const text = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1) ?? "";
  if (!output.success) throw new Error(`${engine} side failed (exit ${output.code})`);
  return JSON.parse(text) as Result;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function compare(): Promise<void> {
  const rounds = Number(values.rounds);
  const results: Record<string, Result[]> = { taskflow: [], bullmq: [] };
  const load = [Deno.loadavg()];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0
      ? ["taskflow", "bullmq"] as const
      : ["bullmq", "taskflow"] as const;
    for (const engine of order) {
      const result = await runSide(engine);
      results[engine].push(result);
      const line = SCENARIOS.map((s) => `${s} ${Math.round(result[s])}`).join(", ");
      console.log(`round ${round + 1} ${engine.padEnd(8)} ${line}`);
    }
  }
  load.push(Deno.loadavg());
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  console.log(`\n| scenario (jobs/s, median of ${rounds}) | TaskFlow | BullMQ 6.7.0 | ratio |`);
  console.log("|---|---:|---:|---:|");
  for (const scenario of SCENARIOS) {
    const t = median(results.taskflow.map((r) => r[scenario]));
    const b = median(results.bullmq.map((r) => r[scenario]));
    console.log(`| ${scenario} | ${fmt(t)} | ${fmt(b)} | ${(t / b).toFixed(2)}× |`);
  }
  console.log(
    `\nloadavg before ${load[0].map((x) => x.toFixed(2)).join(" ")}, after ${
      load[1].map((x) => x.toFixed(2)).join(" ")
    }; ${navigator.hardwareConcurrency} cores; jobs ${size.jobs}, single enqueues ${size.single}`,
  );
}

if (values.side === "taskflow") console.log(JSON.stringify(await taskflowSide()));
else await compare();
