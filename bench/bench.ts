/**
 * @module
 * `deno task bench [--json] [--runs N] [--backends memory,kv-memory,kv-disk,redis,redis-cluster,postgres]
 * [--cluster redis+cluster://host:port,...] [--quick] [--only NAME,...] [--jobs N] [--postgres URL]`:
 * every scenario on every backend, runs interleaved (noisy machines), medians with their spread,
 * the load average, and ratios to the peer engine measured in the same run: BullMQ for Redis when
 * `bench/peers/bullmq` is installed, pg-boss for PostgreSQL (same database) when
 * `bench/peers/pgboss` is. `--jobs` and `--rate` set the retention soak's size (200,000) and feed
 * (2,000 jobs/s).
 *
 * Each measurement runs in a fresh process (`--child`), as each BullMQ one does in Node: what one
 * scenario leaves behind (heap, JIT state, open handles) does not move the next one's figure.
 * Each measurement follows an unmeasured pass in the same process: at full size for the
 * throughput scenarios, as BullMQ's (`bench/warm.mjs`), so both engines are measured in a
 * steady state; at a tenth for the latency scenarios.
 */

import { parseArgs } from "node:util";
import {
  type Backend,
  backends,
  crossProcess,
  dashboardAtScale,
  delayedLateness,
  enqueueBulk,
  enqueueSingle,
  type Figure,
  idleLatency,
  processing,
  processingRetention,
  pruneOnly,
  workerRss,
} from "./scenarios.ts";
import { bullmqAvailable, pgbossAvailable, runBullmq, runPgboss } from "./peers.ts";
import { kvFootprint, redisFootprint } from "./footprint.ts";
import { retentionSoak } from "./soak.ts";
import { enqueueUnique, processingLimited, rateAchieved } from "./flow.ts";
import { concurrentProducers, mixedLoad, realisticJobs, workerProcesses } from "./shapes.ts";
import { waitCrossProcess, waitSameProcess } from "./wait.ts";
import { processingTraced } from "./otel.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean" },
    runs: { type: "string", default: "3" },
    backends: { type: "string", default: "memory,kv-memory,kv-disk,redis" },
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    /** The `redis-cluster` backend's URL (e.g. the cluster tests/redis_cluster_test.ts makes). */
    cluster: { type: "string" },
    postgres: { type: "string", default: "postgres://postgres@127.0.0.1:5432/postgres" },
    quick: { type: "boolean" },
    only: { type: "string" },
    child: { type: "string" },
    backend: { type: "string" },
    jobs: { type: "string" },
    rate: { type: "string", default: "2000" },
  },
});

const runs = Math.max(1, Number(values.runs));
const quick = values.quick === true;
const redisUrl = await reachable(values.redis!) ? values.redis : undefined;
// A cluster URL's first node stands for the cluster.
const clusterUrl = values.cluster &&
    await reachable(values.cluster.replace(/^(rediss?)\+cluster:\/\/([^,/?]*).*$/, "$1://$2"))
  ? values.cluster
  : undefined;
const postgresUrl = await reachable(values.postgres!, 5432) ? values.postgres : undefined;
const names = values.backends!.split(",");
const selected = names.flatMap((key) =>
  backends([key], redisUrl, { clusterUrl, postgresUrl }).map((backend) => ({ key, backend }))
);
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

/** A scenario: its name, its size, how to measure it at a size, its BullMQ peer, warm-up. */
interface Scenario {
  name: string;
  size: number;
  measure: (backend: Backend, n: number) => Promise<Figure>;
  peer?: string;
  /** Its pg-boss peer (`bench/peers/pgboss/bench.mjs`), for the PostgreSQL rows. */
  pgboss?: string;
  /**
   * The unmeasured pass first: at full size for the throughput scenarios (steady state, as
   * BullMQ's; see `bench/warm.mjs`), at a tenth for the latency ones (compiled code is enough).
   */
  warm: "full" | "tenth";
}

/** Names of the flow-control pairs (the part before the side measured). */
const FLOW = {
  limit: "process no-op, c=50, global limit 50 vs none: ",
  unique: (callers: number) =>
    `${callers === 1 ? "enqueue (single, awaited)" : "50 callers × awaited enqueues"}, ` +
    "unique vs plain: ",
};

/** Name of the OpenTelemetry pair (the part before the side measured). */
const OTEL = "process no-op, c=50, OpenTelemetry: ";

const scenarios: Scenario[] = [
  {
    name: "enqueue (single, awaited)",
    size: 2_000,
    measure: enqueueSingle,
    peer: "enqueueSingle",
    pgboss: "enqueueSingle",
    warm: "full",
  },
  {
    name: "enqueueMany (chunks of 1,000)",
    size: 20_000,
    measure: enqueueBulk,
    peer: "enqueueBulk",
    pgboss: "enqueueBulk",
    warm: "full",
  },
  ...[1, 10, 50].map((concurrency) => ({
    name: `process no-op, concurrency ${concurrency}`,
    size: 20_000,
    measure: (b: Backend, n: number) => processing(b, concurrency, n),
    peer: `c${concurrency}`,
    pgboss: concurrency > 1 ? `c${concurrency}` : undefined,
    warm: "full" as const,
  })),
  {
    name: "idle enqueue→start latency",
    size: 1_000,
    measure: idleLatency,
    pgboss: "idle",
    warm: "tenth",
  },
  {
    name: "delayed job lateness (1 s delay)",
    size: 200,
    measure: delayedLateness,
    warm: "tenth",
  },
  { name: "cross-process enqueue→start", size: 200, measure: crossProcess, warm: "tenth" },
  // Issue 22: waitFor resolves after the final commit (same process; another process).
  {
    name: "waitFor after final commit, same process",
    size: 300,
    measure: waitSameProcess,
    warm: "tenth",
  },
  {
    name: "waitFor after final commit, other process",
    size: 100,
    measure: waitCrossProcess,
    warm: "tenth",
  },
  // Issue 20: the shapes users run (bench/shapes.ts).
  {
    name: "concurrent producers (50 callers × 400 awaited enqueues)",
    size: 400,
    measure: (b: Backend, n: number) => concurrentProducers(b, 50, n),
    peer: "producers",
    warm: "full",
  },
  ...[1, 2, 4].map((processes) => ({
    name: `${processes} worker process${processes > 1 ? "es" : ""}, c=50 each`,
    size: 40_000,
    measure: (b: Backend, n: number) => workerProcesses(b, processes, n),
    peer: `processes${processes}`,
    warm: "tenth" as const,
  })),
  ...([
    ["realistic jobs (2 KB args, 1 KB result, 5 ms await), c=100", true, 5, "realistic"],
    ["realistic jobs without payloads (5 ms await), c=100", false, 5, "realisticWait"],
    [
      "realistic jobs without the await (2 KB args, 1 KB result), c=100",
      true,
      0,
      "realisticPayload",
    ],
  ] as const).map(([name, payload, waitMs, peer]) => ({
    name,
    size: 20_000,
    measure: (b: Backend, n: number) => realisticJobs(b, { payload, waitMs }, n),
    peer,
    warm: "full" as const,
  })),
  {
    name: "mixed: 5,000 jobs/s, 10% delayed 100 ms, 5% failing once, c=50",
    size: 20_000,
    measure: (b: Backend, n: number) => mixedLoad(b, 5_000, n / 5_000),
    peer: "mixed",
    warm: "tenth",
  },
  // Issue 19: retention may cost at most 15% of throughput. Off and on alternate per backend.
  ...[false, true].map((on) => ({
    name: `processing with retention on vs off: ${on ? "on (succeeded kept 0 s)" : "off"}, c=50`,
    size: 20_000,
    measure: (b: Backend, n: number) => processingRetention(b, on, n),
    warm: "full" as const,
  })),
  // What pruning costs alone, per pruned job (fill, then one `tf.prune()` measured).
  {
    name: "prune-only: tf.prune() of 10k finished no-op jobs, CPU per pruned job",
    size: 10_000,
    measure: pruneOnly,
    warm: "full" as const,
  },
  // Issue 21 (bench/flow.ts): a global limit of 50 at c=50 within 15% of none; a unique enqueue
  // at most 20% dearer than a plain one; a rate limit met within 2%. Each pair alternates.
  ...[false, true].map((limited) => ({
    name: `${FLOW.limit}${limited ? "limit 50" : "none"}`,
    size: 20_000,
    measure: (b: Backend, n: number) => processingLimited(b, limited, n),
    warm: "full" as const,
  })),
  ...([[1, 2_000], [50, 20_000]] as const).flatMap(([callers, size]) =>
    [false, true].map((unique) => ({
      name: `${FLOW.unique(callers)}${unique ? "unique" : "plain"}`,
      size,
      measure: (b: Backend, n: number) => enqueueUnique(b, { unique, callers }, n),
      warm: "full" as const,
    }))
  ),
  {
    name: "rate limit 500/s, 2,501 jobs at c=50: achieved start rate over the limit",
    size: 500,
    measure: rateAchieved,
    warm: "tenth",
  },
  // Issue 23: the OpenTelemetry API without an SDK costs nothing measurable; with the SDK in
  // memory at most 25%. The pair alternates like the retention pair.
  ...[false, true].map((sdk) => ({
    name: `${OTEL}${sdk ? "SDK in memory" : "API only"}`,
    size: 20_000,
    measure: (b: Backend, n: number) => processingTraced(b, sdk, n),
    warm: "full" as const,
  })),
];

if (values.child !== undefined) {
  // One measurement, in this fresh process: the figure is the last line of stdout.
  const scenario = scenarios[Number(values.child)];
  const backend = backends([values.backend!], redisUrl, { clusterUrl, postgresUrl })[0];
  if (!scenario || !backend) throw new Error(`no scenario ${values.child} on ${values.backend}`);
  const n = Math.round(scenario.size * scale);
  // As bench/warm.mjs does for both engines: one unmeasured pass first.
  await scenario.measure(backend, scenario.warm === "full" ? n : Math.max(20, Math.round(n / 10)));
  console.log(JSON.stringify(await scenario.measure(backend, n)));
  Deno.exit(0);
}

/** Runs one measurement in a child process (see the header). */
async function measureInChild(index: number, key: string): Promise<Figure> {
  const args = ["run", "-A", new URL(import.meta.url).pathname, "--child", String(index)];
  args.push("--backend", key, "--redis", values.redis!, "--postgres", values.postgres!);
  if (quick) args.push("--quick");
  if (values.cluster) args.push("--cluster", values.cluster);
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1) ?? "";
  if (!output.success) {
    throw new Error(`${scenarios[index].name} on ${key} failed (exit ${output.code})`);
  }
  // JSON has no NaN (a figure a backend cannot give, such as cross-process on memory): null.
  const figure = JSON.parse(text, (_, value) => value === null ? NaN : value) as Figure;
  return figure;
}

const useBullmq = redisUrl !== undefined && selected.some((b) => b.key === "redis") &&
  await bullmqAvailable();
const usePgboss = postgresUrl !== undefined && selected.some((b) => b.key === "postgres") &&
  await pgbossAvailable();
for (let run = 1; run <= runs; run++) {
  for (const [index, scenario] of scenarios.entries()) {
    if (only && !only.some((o) => scenario.name.includes(o))) continue;
    for (const { key, backend } of selected) {
      const figure = await measureInChild(index, key);
      let peer: number | undefined;
      if (key === "redis" && useBullmq && scenario.peer) {
        peer = (await runBullmq(redisUrl!, scenario.peer, quick))?.value;
      }
      if (key === "postgres" && usePgboss && scenario.pgboss) {
        peer = (await runPgboss(postgresUrl!, scenario.pgboss, quick))?.value;
      }
      record(backend.name, scenario.name, figure, peer);
      if (!values.json) {
        console.error(
          `run ${run}: ${backend.name} · ${scenario.name}: ${format(figure.value)} ${figure.unit}`,
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
/** Backends whose footprint and soak are measured in bytes: Redis and a KV file. */
const stores = selected.filter(({ key }) => key === "redis" || key === "kv-disk");
if (!only || only.some((o) => "storage footprint".includes(o))) {
  const n = Math.round(10_000 * scale);
  for (const { key, backend } of stores) {
    const found = key === "redis"
      ? await redisFootprint(redisUrl!, n, 50)
      : await kvFootprint(n, 50);
    const peer = key === "redis" && useBullmq
      ? (await runBullmq(redisUrl!, "footprint", quick))?.value
      : undefined;
    const figure = {
      value: found.bytes / n,
      unit: "B/finished job",
      extra: { "B/job in keys": found.keyBytes / n },
    };
    record(backend.name, `storage footprint, ${n} jobs kept`, figure, peer);
  }
}
if (!only || only.some((o) => "retention soak".includes(o))) {
  const n = Number(values.jobs ?? Math.round(200_000 * scale));
  for (const { backend } of stores) {
    const log = values.json ? undefined : (line: string) => console.error(line);
    record(
      backend.name,
      `retention soak, ${n} jobs, kept 5 s`,
      await retentionSoak(backend, n, { log, rate: Number(values.rate) }),
    );
  }
}
if (!only || only.some((o) => "cpu-bound isolated".includes(o))) {
  // Issue 20: 200 jobs × 50 ms of CPU at c=2, on the event loop and in Web Workers, alternating.
  const jobs = Math.round(200 * scale);
  const times: Record<string, number[]> = { loop: [], isolated: [] };
  for (let run = 0; run < runs; run++) {
    for (const mode of run % 2 ? ["isolated", "loop"] : ["loop", "isolated"]) {
      const script = new URL("./isolate.ts", import.meta.url).pathname;
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, "--child", mode, "--jobs", String(jobs)],
        stderr: "inherit",
      }).output();
      if (!output.success) throw new Error(`the ${mode} run of bench/isolate.ts failed`);
      times[mode].push(JSON.parse(new TextDecoder().decode(output.stdout)).elapsed);
    }
  }
  const median = (list: number[]) => [...list].sort((a, b) => a - b)[list.length >> 1];
  record("memory", `cpu-bound, ${jobs} jobs × 50 ms at c=2: isolated over event loop`, {
    value: median(times.loop) / median(times.isolated),
    unit: "× faster",
    extra: { loopMs: median(times.loop), isolatedMs: median(times.isolated) },
  });
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
  // Above 1 when TaskFlow does better: faster, sooner or smaller.
  return row.unit.startsWith("ms") || row.unit.startsWith("B/") ? theirs / ours : ours / theirs;
}

/** Throughput with retention on over off, per backend (issue 19: at least 0.85). */
const retention = Object.fromEntries(
  [...new Set(result.map((r) => r.backend))].flatMap((backend) => {
    const of = (mode: string) =>
      result.find((r) =>
        r.backend === backend && r.scenario.includes(`retention on vs off: ${mode}`)
      );
    const on = of("on"), off = of("off");
    return on && off ? [[backend, on.value / off.value]] : [];
  }),
);

/** Flow-control pairs per backend: limit over none, unique over plain (issue 21 point 5). */
const flow: Record<string, Record<string, number>> = Object.fromEntries(
  [...new Set(result.map((r) => r.backend))].flatMap((backend) => {
    const of = (name: string) => result.find((r) => r.backend === backend && r.scenario === name);
    const pair = (first: string, second: string) => {
      const a = of(first), b = of(second);
      return a && b ? [[second, a.value / b.value] as const] : [];
    };
    const pairs = [
      ...pair(`${FLOW.limit}limit 50`, `${FLOW.limit}none`),
      ...[1, 50].flatMap((c) => pair(`${FLOW.unique(c)}unique`, `${FLOW.unique(c)}plain`)),
    ].map(([name, ratio]) => [name.replace(/: \w+$/, ""), ratio]);
    return pairs.length ? [[backend, Object.fromEntries(pairs)]] : [];
  }),
);

/** Throughput with the SDK over the API alone, per backend (issue 23: at least 0.75). */
const otel = Object.fromEntries(
  [...new Set(result.map((r) => r.backend))].flatMap((backend) => {
    const of = (side: string) =>
      result.find((r) => r.backend === backend && r.scenario === `${OTEL}${side}`);
    const sdk = of("SDK in memory"), api = of("API only");
    return sdk && api ? [[backend, sdk.value / api.value]] : [];
  }),
);

if (values.json) {
  console.log(
    JSON.stringify({ machine, load, results: result, retention, flow, otel }, null, 2),
  );
} else {
  console.log(`\nTaskFlow benchmark — ${machine}\n`);
  console.log(
    "| backend | scenario | median | unit | spread (min–max) | more | peer (BullMQ, pg-boss) | ratio |",
  );
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

for (const [backend, pairs] of Object.entries(flow)) {
  for (const [name, ratio] of Object.entries(pairs)) {
    if (!values.json) console.log(`${backend}, ${name}: ${ratio.toFixed(2)}×`);
  }
}

for (const [backend, ratio] of Object.entries(otel)) {
  if (!values.json) {
    console.log(`OpenTelemetry SDK/API only, c=50 on ${backend}: ${ratio.toFixed(2)}×`);
  }
}

for (const [backend, ratio] of Object.entries(retention)) {
  if (!values.json) {
    console.log(`\nretention on/off, processing at c=50 on ${backend}: ${ratio.toFixed(2)}×`);
  }
}

async function reachable(url: string, defaultPort = 6379): Promise<boolean> {
  try {
    const { hostname, port } = new URL(url);
    const conn = await Deno.connect({ hostname, port: Number(port || defaultPort) });
    conn.close();
    return true;
  } catch {
    return false;
  }
}
