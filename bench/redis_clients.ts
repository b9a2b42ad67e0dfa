/**
 * @module
 * The Redis client of the append/claim path, measured side by side: each choice runs the
 * "single enqueue" and "concurrency 50" scenarios of `bench/redis_vs_bullmq.ts` in a fresh
 * process per round (`--side taskflow --only ...`), choices interleaved and their order rotated
 * each round; per-round figures, medians and ratios against the first choice are printed.
 *
 * The choice reaches the child as `TASKFLOW_REDIS_CLIENT`; only a backend that reads it (the
 * measurement commit of issue 17) lets it choose anything.
 *
 * ```sh
 * deno run -A bench/redis_clients.ts [--clients resp,ioredis-auto,ioredis] [--rounds 3]
 *   [--url redis://127.0.0.1:6379] [--jobs 20000] [--single 5000]
 * ```
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    clients: { type: "string", default: "resp,ioredis-auto,ioredis" },
    rounds: { type: "string", default: "3" },
    url: { type: "string", default: "redis://127.0.0.1:6379" },
    jobs: { type: "string", default: "20000" },
    single: { type: "string", default: "5000" },
  },
});
const SCENARIOS = ["enqueueSingle", "process50"] as const;
type Result = Record<(typeof SCENARIOS)[number], number>;

/** One fresh TaskFlow process with `client` on the append/claim path. */
async function measure(client: string): Promise<Result> {
  const root = new URL("..", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "bench/redis_vs_bullmq.ts",
      "--side",
      "taskflow",
      "--only",
      SCENARIOS.join(","),
      "--url",
      values.url!,
      "--jobs",
      values.jobs!,
      "--single",
      values.single!,
    ],
    cwd: root,
    env: { TASKFLOW_REDIS_CLIENT: client },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`${client} failed (exit ${output.code})`);
  const text = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1) ?? "";
  return JSON.parse(text) as Result;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const clients = values.clients!.split(",");
const rounds = Number(values.rounds);
const results = new Map<string, Result[]>(clients.map((c) => [c, []]));
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const load = [Deno.loadavg()];
for (let round = 0; round < rounds; round++) {
  const order = clients.map((_, i) => clients[(i + round) % clients.length]);
  for (const client of order) {
    const result = await measure(client);
    results.get(client)!.push(result);
    const line = SCENARIOS.map((s) => `${s} ${fmt(result[s])}`).join(", ");
    console.log(`round ${round + 1} ${client.padEnd(13)} ${line} (load ${Deno.loadavg()[0]})`);
  }
}
load.push(Deno.loadavg());
const base = clients[0];
console.log(`\n| client (jobs/s, median of ${rounds}) | ${SCENARIOS.join(" | ")} |`);
console.log(`|---|${SCENARIOS.map(() => "---:").join("|")}|`);
for (const client of clients) {
  const cells = SCENARIOS.map((s) => {
    const m = median(results.get(client)!.map((r) => r[s]));
    const b = median(results.get(base)!.map((r) => r[s]));
    return client === base ? fmt(m) : `${fmt(m)} (${(m / b).toFixed(3)}× ${base})`;
  });
  console.log(`| ${client} | ${cells.join(" | ")} |`);
}
console.log(
  `\nloadavg before ${load[0].map((x) => x.toFixed(2)).join(" ")}, after ${
    load[1].map((x) => x.toFixed(2)).join(" ")
  }; ${navigator.hardwareConcurrency} cores; jobs ${values.jobs}, single enqueues ${values.single}`,
);
