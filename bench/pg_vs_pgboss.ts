/**
 * @module
 * TaskFlow on PostgreSQL against pg-boss, round by round:
 * `deno run -A bench/pg_vs_pgboss.ts [--postgres URL] [--rounds N] [--only word,...]`.
 * Each round runs every scenario on both engines in fresh processes (`bench/bench.ts --child`
 * and `bench/peers/pgboss/bench.mjs`, each after its unmeasured pass), alternating which goes
 * first, and prints each round's figures and ratio, the load average, and the median ratio.
 */

import { parseArgs } from "node:util";
import { pgbossAvailable, runPgboss } from "./peers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    postgres: { type: "string", default: "postgres://postgres@127.0.0.1:5432/postgres" },
    rounds: { type: "string", default: "5" },
    only: { type: "string" },
  },
});

/** Scenarios: their index in bench.ts's list, pg-boss's name, and whether lower is better. */
const SCENARIOS = [
  { name: "enqueue (single, awaited)", child: 0, pgboss: "enqueueSingle", lower: false },
  { name: "enqueueMany (chunks of 1,000)", child: 1, pgboss: "enqueueBulk", lower: false },
  { name: "process no-op, concurrency 10", child: 3, pgboss: "c10", lower: false },
  { name: "process no-op, concurrency 50", child: 4, pgboss: "c50", lower: false },
  { name: "idle enqueue→start latency", child: 5, pgboss: "idle", lower: true },
].filter((s) => !values.only || values.only.split(",").some((o) => s.name.includes(o)));

if (!await pgbossAvailable()) throw new Error("run `npm ci` in bench/peers/pgboss first");

async function taskflow(child: number): Promise<{ value: number; extra?: Record<string, number> }> {
  const bench = new URL("./bench.ts", import.meta.url).pathname;
  const args = ["run", "-A", bench, "--child", String(child), "--backend", "postgres"];
  args.push("--postgres", values.postgres!);
  const output = await new Deno.Command(Deno.execPath(), { args, stdout: "piped" }).output();
  if (!output.success) throw new Error(`TaskFlow child ${child} failed`);
  return JSON.parse(new TextDecoder().decode(output.stdout).trim().split("\n").at(-1)!);
}

const ratios = new Map<string, number[]>();
const rounds = Math.max(1, Number(values.rounds));
for (let round = 1; round <= rounds; round++) {
  for (const scenario of SCENARIOS) {
    let tf: { value: number; extra?: Record<string, number> } | undefined;
    let boss: { value: number } | undefined;
    if (round % 2) {
      tf = await taskflow(scenario.child);
      boss = await runPgboss(values.postgres!, scenario.pgboss, false);
    } else {
      boss = await runPgboss(values.postgres!, scenario.pgboss, false);
      tf = await taskflow(scenario.child);
    }
    if (!boss) throw new Error(`pg-boss ${scenario.pgboss} failed`);
    const ratio = scenario.lower ? boss.value / tf.value : tf.value / boss.value;
    ratios.set(scenario.name, [...ratios.get(scenario.name) ?? [], ratio]);
    const cpu = tf.extra?.cpuUsPerJob;
    console.log(
      `round ${round} · ${scenario.name}: TaskFlow ${tf.value.toFixed(1)}, pg-boss ${
        boss.value.toFixed(1)
      }, ${ratio.toFixed(2)}×${cpu ? `, TaskFlow CPU ${cpu.toFixed(1)} µs/job` : ""} (load ${
        Deno.loadavg()[0].toFixed(1)
      })`,
    );
  }
}
for (const [name, list] of ratios) {
  const sorted = [...list].sort((a, b) => a - b);
  console.log(
    `${name}: median ${sorted[sorted.length >> 1].toFixed(2)}× (${
      list.map((r) => r.toFixed(2)).join(", ")
    })`,
  );
}
