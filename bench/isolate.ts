/**
 * @module
 * `deno run -A bench/isolate.ts [--rounds 3] [--jobs 200] [--ms 50] [--concurrency 2]`:
 * jobs that each compute for `ms` without yielding, run by one worker at `concurrency`, on the
 * event loop and isolated (Web Workers, one per slot), each run in a fresh process, rounds
 * interleaved (the order alternates), every round printed with the load average, then the
 * median times and their ratio. Storage is in memory: what is measured is the handlers' overlap.
 */

import { parseArgs } from "node:util";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";

/** Computes for `args.ms` without yielding; a Web Worker imports this module to run it. */
export const compute = defineJob("bench.compute", (args: { ms: number }) => {
  const end = performance.now() + args.ms;
  let spins = 0;
  while (performance.now() < end) spins++;
  return spins > 0;
}, { module: import.meta.url });

type Mode = "loop" | "isolated";

/** One measurement: ms from the worker's start until every job succeeded. */
async function measure(mode: Mode, jobs: number, ms: number, concurrency: number) {
  const storage = new MemoryStorage();
  const tf = new TaskFlow(storage);
  await tf.enqueueMany(Array.from({ length: jobs }, () => ({ job: compute, args: { ms } })));
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
    },
  });
  const [jobs, ms, concurrency] = [values.jobs, values.ms, values.concurrency].map(Number);
  if (values.child) {
    const elapsed = await measure(values.child as Mode, jobs, ms, concurrency);
    console.log(JSON.stringify({ elapsed }));
  } else {
    const rounds = Math.max(1, Number(values.rounds));
    const times: Record<Mode, number[]> = { loop: [], isolated: [] };
    console.log(
      `${jobs} jobs × ${ms} ms of CPU at concurrency ${concurrency}, ` +
        `${navigator.hardwareConcurrency} cores, ${rounds} rounds`,
    );
    for (let round = 0; round < rounds; round++) {
      const order: Mode[] = round % 2 ? ["isolated", "loop"] : ["loop", "isolated"];
      const line: string[] = [];
      for (const mode of order) {
        const output = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", new URL(import.meta.url).pathname, "--child", mode, ...Deno.args],
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
