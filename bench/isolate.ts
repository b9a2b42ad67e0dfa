/**
 * @module
 * `deno run -A bench/isolate.ts [--rounds 3] [--jobs 200] [--ms 50] [--concurrency 2]
 * [--work wall|cpu]`: jobs that each compute for `ms` without yielding, run by one worker at
 * `concurrency`, on the event loop and isolated (Web Workers, one per slot), each run in a fresh
 * process, rounds interleaved (the order alternates), every round printed with the load average,
 * then the median times and their ratio. Storage is in memory: what is measured is the handlers'
 * overlap.
 *
 * `--work wall` (default) spins until `ms` have passed, as a handler that computes for that long
 * on a free core. `--work cpu` does a fixed number of steps, calibrated on this process's CPU
 * time, so that both sides do the same work: on a machine whose cores are all taken (and where
 * the kernel shares CPU per session, not per thread) the pool then has no spare core to win.
 */

import { parseArgs } from "node:util";
import process from "node:process";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";

function work(steps: number): number {
  let x = 1;
  for (let i = 0; i < steps; i++) x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0;
  return x;
}

function spin(ms: number): number {
  const end = performance.now() + ms;
  let spins = 0;
  while (performance.now() < end) spins++;
  return spins;
}

/** Computes for `ms` or `steps`; a Web Worker imports this module to run it. */
export const compute = defineJob(
  "bench.compute",
  (args: { ms?: number; steps?: number }) =>
    args.steps === undefined ? spin(args.ms ?? 0) : work(args.steps),
  { module: import.meta.url },
);

/** Steps of {@link work} per ms of this process's CPU time. */
function calibrate(): number {
  work(50_000_000); // compiled by the optimizing JIT first
  const steps = 200_000_000;
  const before = process.cpuUsage();
  work(steps);
  const used = process.cpuUsage(before);
  return steps / ((used.user + used.system) / 1_000);
}

type Mode = "loop" | "isolated";

/** One measurement: ms from the worker's start until every job succeeded. */
async function measure(
  mode: Mode,
  jobs: number,
  args: { ms?: number; steps?: number },
  concurrency: number,
) {
  const storage = new MemoryStorage();
  const tf = new TaskFlow(storage);
  await tf.enqueueMany(Array.from({ length: jobs }, () => ({ job: compute, args })));
  const worker = createWorker({
    storage,
    jobs: [compute],
    concurrency,
    isolate: mode === "isolated",
    pollIntervalMs: 5,
    minPollIntervalMs: 0,
    recurring: false,
  });
  const start = performance.now();
  await worker.start();
  while (worker.stats.succeeded < jobs) await new Promise((resolve) => setTimeout(resolve, 2));
  const elapsed = performance.now() - start;
  await worker.stop();
  await tf.close();
  return elapsed;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      jobs: { type: "string", default: "200" },
      ms: { type: "string", default: "50" },
      concurrency: { type: "string", default: "2" },
      child: { type: "string" },
      steps: { type: "string" },
      work: { type: "string", default: "wall" },
    },
  });
  const [jobs, ms, concurrency] = [values.jobs, values.ms, values.concurrency].map(Number);
  if (values.child) {
    const args = values.steps ? { steps: Number(values.steps) } : { ms };
    const elapsed = await measure(values.child as Mode, jobs, args, concurrency);
    console.log(JSON.stringify({ elapsed }));
  } else {
    const rounds = Math.max(1, Number(values.rounds));
    if (values.work !== "wall" && values.work !== "cpu") throw new Error("--work is wall or cpu");
    const steps = values.work === "cpu" ? Math.round(calibrate() * ms) : undefined;
    const times: Record<Mode, number[]> = { loop: [], isolated: [] };
    console.log(
      `${jobs} jobs × ${ms} ms of CPU at concurrency ${concurrency}, ` +
        `${navigator.hardwareConcurrency} cores, ${rounds} rounds, ` +
        (steps ? `${steps} steps a job` : "spinning on the wall clock"),
    );
    for (let round = 0; round < rounds; round++) {
      const order: Mode[] = round % 2 ? ["isolated", "loop"] : ["loop", "isolated"];
      const line: string[] = [];
      for (const mode of order) {
        const output = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL(import.meta.url).pathname,
            "--child",
            mode,
            ...steps ? ["--steps", String(steps)] : [],
            ...Deno.args,
          ],
          stderr: "inherit",
        }).output();
        if (!output.success) throw new Error(`the ${mode} run failed`);
        const { elapsed } = JSON.parse(new TextDecoder().decode(output.stdout));
        times[mode].push(elapsed);
        line.push(`${mode} ${Math.round(elapsed)} ms`);
      }
      const load = Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
      console.log(`round ${round + 1}: ${line.join(", ")} (load ${load})`);
    }
    const median = (list: number[]) => [...list].sort((a, b) => a - b)[list.length >> 1];
    const [loop, isolated] = [median(times.loop), median(times.isolated)];
    console.log(
      `median: loop ${Math.round(loop)} ms, isolated ${Math.round(isolated)} ms, ` +
        `isolated is ${(loop / isolated).toFixed(2)}× faster`,
    );
  }
}
