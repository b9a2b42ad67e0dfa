/**
 * @module
 * TaskFlow on Redis side by side with BullMQ 6 on the same Redis, in one run: no-op jobs/s at
 * concurrency 10 and 50 (first to last completion), and enqueue jobs/s (one awaited enqueue at
 * a time, and enqueueMany in chunks of 1,000); then issue 20's shapes (`bench/shapes.ts`):
 * 50 concurrent producers, 1/2/4 worker processes, realistic jobs (and their two halves), and
 * a mixed steady load (end-to-end latency in ms: its ratio is BullMQ's over TaskFlow's). Each side runs in a fresh process per round and
 * measures every scenario after an unmeasured pass at full size (bench/warm.mjs), rounds
 * interleave the two engines (alternating which goes first), and medians are printed.
 *
 * ```sh
 * (cd bench/peers/bullmq && npm ci)
 * deno run -A bench/redis_vs_bullmq.ts [--url redis://127.0.0.1:6379] [--rounds 3]
 *   [--jobs 20000] [--single 5000] [--only process50,producers,...]
 * ```
 */

import { parseArgs } from "node:util";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { RedisStorage } from "../storage/redis/mod.ts";
import { warm } from "./warm.mjs";
import { backends, type Figure } from "./scenarios.ts";
import { concurrentProducers, mixedLoad, realisticJobs, workerProcesses } from "./shapes.ts";

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
const SCENARIOS = [
  "enqueueSingle",
  "enqueueMany",
  "process10",
  "process50",
  "producers",
  "processes1",
  "processes2",
  "processes4",
  "realistic",
  "realisticWait",
  "realisticPayload",
  "mixed",
] as const;
type Name = (typeof SCENARIOS)[number];
/** A scenario's figure: jobs/s, or (mixed) p50 ms, with more figures beside it. */
type Measured = number | { value: number; [more: string]: number };
type Result = Partial<Record<Name, Measured>> & { engine: string };
/** Smaller is better (latency): the ratio is BullMQ's over TaskFlow's. */
const LOWER_IS_BETTER: readonly Name[] = ["mixed"];

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

/** A shape of `bench/shapes.ts` as a figure with its extras flattened. */
function shape(measure: () => Promise<Figure>): () => Promise<Measured> {
  return async () => {
    const figure = await measure();
    return { value: figure.value, ...figure.extra };
  };
}

/** The TaskFlow side: every scenario, or those named by `--only` (comma-separated). */
async function taskflowSide(): Promise<Result> {
  const redis = backends(["redis"], values.url)[0];
  const runs: Record<Name, () => Promise<Measured>> = {
    enqueueSingle,
    enqueueMany,
    process10: () => processAt(10),
    process50: () => processAt(50),
    producers: shape(() => concurrentProducers(redis, 50, 400)),
    processes1: shape(() => workerProcesses(redis, 1)),
    processes2: shape(() => workerProcesses(redis, 2)),
    processes4: shape(() => workerProcesses(redis, 4)),
    realistic: shape(() => realisticJobs(redis, { payload: true, waitMs: 5 })),
    realisticWait: shape(() => realisticJobs(redis, { payload: false, waitMs: 5 })),
    realisticPayload: shape(() => realisticJobs(redis, { payload: true, waitMs: 0 })),
    mixed: shape(() => mixedLoad(redis)),
  };
  const result: Result = { engine: "taskflow" };
  for (const scenario of selected) result[scenario] = await warm(runs[scenario]);
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
    "--only",
    selected.join(","),
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

const valueOf = (m: Measured) => typeof m === "number" ? m : m.value;

/** A round's figure and its extras, for the log. */
function describe(m: Measured | undefined): string {
  if (m === undefined) return "-";
  if (typeof m === "number") return String(Math.round(m));
  return Object.entries(m).map(([k, v]) => `${k === "value" ? "" : k + " "}${v.toFixed(1)}`)
    .join(" ");
}

/** The medians of a scenario's extra figures over the rounds, as " (name x, ...)". */
function extras(figures: Measured[]): string {
  const keys = figures.flatMap((m) => typeof m === "number" ? [] : Object.keys(m))
    .filter((k, i, all) => k !== "value" && all.indexOf(k) === i);
  if (!keys.length) return "";
  const each = keys.map((k) => {
    const v = median(figures.map((m) => (m as Record<string, number>)[k]));
    return `${k} ${v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1)}`;
  });
  return ` (${each.join(", ")})`;
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
      const line = selected.map((s) => `${s} ${describe(result[s])}`).join(", ");
      console.log(`round ${round + 1} ${engine.padEnd(8)} ${line}`);
    }
  }
  load.push(Deno.loadavg());
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  console.log(
    `\n| scenario (jobs/s; mixed: p50 ms; median of ${rounds}) | TaskFlow | BullMQ 6.7.0 | ratio |`,
  );
  console.log("|---|---:|---:|---:|");
  for (const scenario of selected) {
    const figures = (engine: string) => results[engine].map((r) => r[scenario]!);
    const t = median(figures("taskflow").map(valueOf));
    const b = median(figures("bullmq").map(valueOf));
    const ratio = LOWER_IS_BETTER.includes(scenario) ? b / t : t / b;
    const more = (engine: string) => extras(figures(engine));
    console.log(
      `| ${scenario} | ${fmt(t)}${more("taskflow")} | ${fmt(b)}${more("bullmq")} | ${
        ratio.toFixed(2)
      }× |`,
    );
  }
  console.log(
    `\nloadavg before ${load[0].map((x) => x.toFixed(2)).join(" ")}, after ${
      load[1].map((x) => x.toFixed(2)).join(" ")
    }; ${navigator.hardwareConcurrency} cores; jobs ${size.jobs}, single enqueues ${size.single}`,
  );
}

/** The scenarios of this run: `--only`'s (comma-separated), else all. */
const selected = SCENARIOS.filter((s) => values.only?.split(",").includes(s) ?? true);

if (values.side === "taskflow") console.log(JSON.stringify(await taskflowSide()));
else await compare();
