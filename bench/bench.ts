/**
 * @module
 * `deno task bench [--json] [--runs N] [--backends memory,kv-memory,kv-disk,redis] [--quick]`:
 * every scenario on every backend, runs interleaved (noisy machines), medians with their spread,
 * the load average, and TaskFlow/BullMQ ratios for Redis when `bench/peers/bullmq` is installed.
 */

import { parseArgs } from "node:util";
import {
  backends,
  crossProcess,
  dashboardAtScale,
  delayedLateness,
  enqueueBulk,
  enqueueSingle,
  type Figure,
  idleLatency,
  processing,
  workerRss,
} from "./scenarios.ts";
import { bullmqAvailable, runBullmq } from "./peers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean" },
    runs: { type: "string", default: "3" },
    backends: { type: "string", default: "memory,kv-memory,kv-disk,redis" },
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    quick: { type: "boolean" },
    only: { type: "string" },
  },
});

const runs = Math.max(1, Number(values.runs));
const quick = values.quick === true;
const redisUrl = await reachable(values.redis!) ? values.redis : undefined;
const selected = backends(values.backends!.split(","), redisUrl);
const only = values.only?.split(",");
const scale = quick ? 0.1 : 1;

interface Row {
  backend: string;
  scenario: string;
  values: number[];
  unit: string;
  extra: Record<string, number[]>;
  peer?: number[];
}

const rows = new Map<string, Row>();
function record(backend: string, scenario: string, figure: Figure, peer?: number): void {
  const key = `${backend}|${scenario}`;
  const row = rows.get(key) ?? { backend, scenario, values: [], unit: figure.unit, extra: {} };
  row.values.push(figure.value);
  for (const [k, v] of Object.entries(figure.extra ?? {})) (row.extra[k] ??= []).push(v);
  if (peer !== undefined) (row.peer ??= []).push(peer);
  rows.set(key, row);
}

const scenarios: Array<[string, (b: typeof selected[number]) => Promise<Figure>, string?]> = [
  [
    "enqueue (single, awaited)",
    (b) => enqueueSingle(b, Math.round(2_000 * scale)),
    "enqueueSingle",
  ],
  [
    "enqueueMany (chunks of 1,000)",
    (b) => enqueueBulk(b, Math.round(20_000 * scale)),
    "enqueueBulk",
  ],
  ["process no-op, concurrency 1", (b) => processing(b, 1, Math.round(20_000 * scale)), "c1"],
  ["process no-op, concurrency 10", (b) => processing(b, 10, Math.round(20_000 * scale)), "c10"],
  ["process no-op, concurrency 50", (b) => processing(b, 50, Math.round(20_000 * scale)), "c50"],
  ["idle enqueue→start latency", (b) => idleLatency(b, Math.round(1_000 * scale))],
  ["delayed job lateness (1 s delay)", (b) => delayedLateness(b, Math.round(200 * scale))],
  ["cross-process enqueue→start", (b) => crossProcess(b, Math.round(200 * scale))],
];

const useBullmq = redisUrl !== undefined && selected.some((b) => b.name === "redis") &&
  await bullmqAvailable();
for (let run = 1; run <= runs; run++) {
  for (const [scenario, measure, peerScenario] of scenarios) {
    if (only && !only.some((o) => scenario.includes(o))) continue;
    for (const backend of selected) {
      const figure = await measure(backend);
      let peer: number | undefined;
      if (backend.name === "redis" && useBullmq && peerScenario) {
        peer = (await runBullmq(redisUrl!, peerScenario, quick))?.value;
      }
      record(backend.name, scenario, figure, peer);
      if (!values.json) {
        console.error(
          `run ${run}: ${backend.name} · ${scenario}: ${format(figure.value)} ${figure.unit}`,
        );
      }
    }
  }
}
if (!only || only.some((o) => "dashboard".includes(o))) {
  const disk = backends(["kv-disk"])[0];
  const pages = await dashboardAtScale(disk, Math.round(100_000 * scale));
  for (const [page, figure] of Object.entries(pages)) {
    record(disk.name, `dashboard ${page}, ${quick ? "10k" : "100k"} jobs`, figure);
  }
}
if (!only || only.some((o) => "rss".includes(o))) {
  record(
    "kv disk",
    `worker RSS over ${quick ? "10k" : "100k"} jobs`,
    await workerRss(Math.round(100_000 * scale)),
  );
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
function format(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1);
}

const load = Deno.loadavg();
const machine = `${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}, load average ${
  load.map((l) => l.toFixed(2)).join(" ")
}`;
const result = [...rows.values()].map((row) => ({
  backend: row.backend,
  scenario: row.scenario,
  value: median(row.values),
  unit: row.unit,
  runs: row.values.length,
  spread: [Math.min(...row.values), Math.max(...row.values)],
  extra: Object.fromEntries(Object.entries(row.extra).map(([k, v]) => [k, median(v)])),
  bullmq: row.peer ? median(row.peer) : undefined,
  ratio: row.peer ? ratio(row) : undefined,
}));

function ratio(row: Row): number {
  const ours = median(row.values), theirs = median(row.peer!);
  return row.unit.startsWith("ms") ? theirs / ours : ours / theirs;
}

if (values.json) {
  console.log(JSON.stringify({ machine, load, results: result }, null, 2));
} else {
  console.log(`\nTaskFlow benchmark — ${machine}\n`);
  console.log("| backend | scenario | median | unit | spread (min–max) | more | BullMQ | ratio |");
  console.log("| --- | --- | ---: | --- | --- | --- | ---: | ---: |");
  for (const r of result) {
    const more = Object.entries(r.extra).map(([k, v]) => `${k} ${format(v)}`).join(", ");
    console.log(
      `| ${r.backend} | ${r.scenario} | ${format(r.value)} | ${r.unit} | ${format(r.spread[0])}–${
        format(r.spread[1])
      } | ${more} | ${r.bullmq === undefined ? "" : format(r.bullmq)} | ${
        r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}×`
      } |`,
    );
  }
}

async function reachable(url: string): Promise<boolean> {
  try {
    const { hostname, port } = new URL(url);
    const conn = await Deno.connect({ hostname, port: Number(port || 6379) });
    conn.close();
    return true;
  } catch {
    return false;
  }
}
