/**
 * @module
 * Chaos: worker subprocesses on one storage, killed with SIGKILL at random and restarted while
 * they work through jobs of mixed duration; then drained and checked. `deno task chaos` runs the
 * full version (10,000 jobs, 30 s of kills); `tests/chaos_test.ts` a short one. With retention on,
 * every worker prunes Succeeded jobs as they expire and archives each slice first, so that every
 * job can still be accounted for: by its record, or by the archived record it was removed with.
 */

import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { TaskFlow } from "../lib/client.ts";
import { doctor } from "../lib/doctor.ts";
import type { ArchivedJob, FlowIds, FlowNode } from "../lib/mod.ts";
import { assertConsistent, seeded, spawnWorkerProcess } from "./helpers.ts";
import { deletePrefix } from "./redis_helpers.ts";
import {
  type ChaosLimits,
  checkLimits,
  configureLimits,
  enqueueLimited,
  killLine,
  limitedQueues,
} from "./chaos_limits.ts";

/** How a chaos run is shaped. */
export interface ChaosOptions {
  url: string;
  jobs: number;
  workers: number;
  /** How long workers are killed at random. */
  killForMs: number;
  /** Mean time between kills. */
  killEveryMs: number;
  seed?: number;
  /**
   * Wall-clock offsets of the workers, by slot (a host with broken NTP); a slot with an offset
   * runs `tests/chaos_worker.ts`, the others `main.ts worker`.
   */
  skewsMs?: number[];
  /**
   * Retention on: Succeeded jobs kept this long, then pruned by every worker (archived first).
   * Skewed workers prune every 250 ms; `main.ts worker` (no flag for it) at its default interval.
   */
  keepSucceededMs?: number;
  /** A queue at a global concurrency among the kills (see chaos_limits.ts). */
  limits?: ChaosLimits;
  /** Longest wait for the drain after the kills stop. */
  drainMs?: number;
  /** Flows enqueued too (each a root, 3 children, 9 grandchildren): none may start early. */
  flows?: number;
  log?: (line: string) => void;
  /** Called after each kill, under load: e.g. cutting every database connection of the run. */
  disrupt?: () => Promise<void>;
}

/** What a chaos run found. */
export interface ChaosReport {
  jobs: number;
  kills: number;
  /** Jobs the killed workers were running when killed (started, never ended), summed. */
  inFlightAtKills: number;
  lost: number;
  stuck: number;
  notSucceeded: number;
  /** Jobs pruned (gone, archived as Succeeded). */
  pruned: number;
  /** Executions beyond one per job, counted by the jobs themselves. */
  duplicates: number;
  /** Claims of live workers reaped (their leases expired while `disrupt` cut them off). */
  reapedLive: number;
  seconds: number;
  /** With `limits`: the most of the limited queue's jobs running at once (see chaos_limits.ts). */
  limitedMostAtOnce?: number;
  /** With `limits`: its runs reaped while their worker lived, not held to the limit. */
  leaseExpiredRuns?: number;
  consistent: boolean;
  problems: string[];
}

/** Starts `tests/chaos_worker.ts`: a chaos worker whose clock is off by `skewMs`. */
function spawnSkewedWorker(
  url: string,
  runs: string,
  skewMs: number,
  retention: Record<string, string>,
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tests/chaos_worker.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    env: {
      TASKFLOW_TEST_RUNS: runs,
      TASKFLOW_CHAOS_URL: url,
      TASKFLOW_CHAOS_SKEW_MS: String(skewMs),
      NO_COLOR: "1",
      ...retention,
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

/** Keeps `child`'s standard error in `path` (a crash's message is read back from it). */
async function keepStderr(child: Deno.ChildProcess, path: string): Promise<void> {
  try {
    const file = await Deno.open(path, { write: true, create: true });
    await child.stderr.pipeTo(file.writable);
  } catch {
    // Nothing kept: the crash is still reported, without its message.
  }
}

/** The last `n` lines of what a crashed worker printed to standard error. */
async function lastLines(path: string, n = 3): Promise<string> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.trim().split("\n").slice(-n).join(" | ");
}

/** Runs chaos against `options.url` and reports; never throws for a violation (see `problems`). */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => {});
  const random = seeded(options.seed ?? 4242);
  const dir = await Deno.makeTempDir({ prefix: "taskflow-chaos-" });
  const runsFile = `${dir}/runs.txt`;
  const tf = await TaskFlow.open(options.url);
  const started = performance.now();
  const keepMs = options.keepSucceededMs;
  if (options.limits) await configureLimits(tf, options.limits);
  const queues = limitedQueues(options.limits);
  let spawned = 0;
  const spawn = (slot: number) => {
    const skew = options.skewsMs?.[slot];
    // One archive directory per process: a line cut short by SIGKILL ends its own file.
    const archive = `${dir}/archive/${spawned++}`;
    if (skew) {
      const retention: Record<string, string> = keepMs === undefined ? {} : {
        TASKFLOW_CHAOS_KEEP_MS: String(keepMs),
        TASKFLOW_CHAOS_ARCHIVE: archive,
      };
      const served: Record<string, string> = queues
        ? { TASKFLOW_CHAOS_QUEUES: queues.join(",") }
        : {};
      return spawnSkewedWorker(options.url, runsFile, skew, { ...retention, ...served });
    }
    const retention = keepMs === undefined
      ? []
      : ["--retention", `succeeded=${keepMs}ms`, "--archive", archive];
    return spawnWorkerProcess({
      url: options.url,
      jobs: "tests/fixtures/chaos_jobs.ts",
      runs: runsFile,
      args: [
        ...["--concurrency", "20", "--heartbeat-ms", "1000", "--poll-ms", "100", ...retention],
        ...queues ? ["--queues", queues.join(",")] : [],
      ],
      output: "null",
      stderr: "piped",
    });
  };
  let kills = 0;
  const killed = new Set<number>();
  /** Workers that ended while nobody was stopping them (a crash, an uncaught error). */
  const crashes: string[] = [];
  let stopping = false;
  const watched = (slot: number) => {
    const child = spawn(slot);
    const stderr = `${dir}/worker-${child.pid}.err`;
    const kept = keepStderr(child, stderr);
    child.status.then(({ code, signal }) => {
      if (stopping || killed.has(child.pid)) return;
      const at =
        crashes.push(`worker pid ${child.pid} exited by itself (code ${code}, signal ${signal})`) -
        1;
      // What it printed last says why (an uncaught error), once its standard error is in.
      void kept.then(() => lastLines(stderr)).then((tail) => {
        if (tail) crashes[at] += `: ${tail}`;
      });
    });
    return child;
  };
  const workers = Array.from({ length: options.workers }, (_, slot) => watched(slot));
  const ids: string[] = [];
  /** Flow nodes and the nodes they wait for. */
  const flowEdges: Array<{ id: string; children: string[] }> = [];
  const limitedIds: string[] = [];
  try {
    for (let i = 0; i < options.jobs; i += 500) {
      const n = Math.min(500, options.jobs - i);
      ids.push(
        ...await tf.enqueueMany(Array.from({ length: n }, () => ({
          job: "chaos.work",
          args: {
            ms: random() < 0.8 ? Math.floor(random() * 20) : 50 + Math.floor(random() * 250),
          },
        }))),
      );
    }
    for (let f = 0; f < (options.flows ?? 0); f++) {
      const node = (depth: number): FlowNode => ({
        job: "chaos.work",
        args: { ms: Math.floor(random() * 20) },
        children: depth < 2 ? [0, 1, 2].map(() => node(depth + 1)) : [],
      });
      const walk = (ids_: FlowIds) => {
        ids.push(ids_.id);
        flowEdges.push({ id: ids_.id, children: ids_.children.map((c) => c.id) });
        ids_.children.forEach(walk);
      };
      walk(await tf.flow(node(0)));
    }
    if (options.limits) limitedIds.push(...await enqueueLimited(tf, options.limits, random));
    ids.push(...limitedIds);
    log(
      `enqueued ${ids.length} jobs; killing a worker every ~${options.killEveryMs} ms for ${options.killForMs} ms`,
    );
    const killUntil = Date.now() + options.killForMs;
    while (Date.now() < killUntil) {
      await new Promise((r) => setTimeout(r, options.killEveryMs * (0.5 + random())));
      const index = Math.floor(random() * workers.length);
      const victim = workers[index];
      killed.add(victim.pid);
      try {
        victim.kill("SIGKILL");
      } catch {
        // it crashed already (reported below)
      }
      await victim.status;
      kills++;
      await Deno.writeTextFile(runsFile, killLine(victim.pid), { append: true });
      log(`killed worker pid ${victim.pid}; restarting`);
      workers[index] = watched(index);
      await options.disrupt?.();
    }
    const drainUntil = Date.now() + (options.drainMs ?? 120_000);
    while (Date.now() < drainUntil) {
      const { states, totals } = await tf.counts();
      if (states.Succeeded + states.Failed + states.Deleted + totals.pruned === ids.length) {
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    stopping = true;
    for (const worker of workers) {
      try {
        worker.kill("SIGTERM");
      } catch {
        // already gone
      }
      await worker.status;
    }
  }
  const problems: string[] = [...crashes];
  const records = await tf.storage.getMany(ids);
  const archived = await readArchives(`${dir}/archive`);
  for (const [id, { record }] of archived) {
    if (record.state !== "Succeeded") problems.push(`${id} was pruned in state ${record.state}`);
  }
  const gone = ids.filter((_, i) => records[i] === null);
  // A job gone is pruned when it was archived as Succeeded; lost otherwise.
  const pruned = gone.filter((id) => archived.get(id)?.record.state === "Succeeded").length;
  const lost = gone.length - pruned;
  const stuck =
    records.filter((r) =>
      r && (r.state === "Processing" || r.state === "Enqueued" || r.state === "Scheduled")
    ).length;
  const notSucceeded = records.filter((r) => r && r.state !== "Succeeded").length;
  // Executions are counted by the jobs themselves (their start lines).
  const starts = new Map<string, number>();
  const ended = new Set<string>();
  // Line numbers: appends from every process land in the file in the order they happened.
  const firstStart = new Map<string, number>(), lastEnd = new Map<string, number>();
  const lines = (await Deno.readTextFile(runsFile).catch(() => "")).split("\n");
  for (const [at, line] of lines.entries()) {
    const [kind, id] = line.split(" ");
    if (kind === "start") starts.set(id, (starts.get(id) ?? 0) + 1);
    if (kind === "start" && !firstStart.has(id)) firstStart.set(id, at);
    if (kind === "end") ended.add(id);
    if (kind === "end") lastEnd.set(id, at);
  }
  // A flow node starts only after each of its children's last run ended (the one committed).
  const early = flowEdges.flatMap(({ id, children }) =>
    children.filter((child) => (firstStart.get(id) ?? Infinity) <= (lastEnd.get(child) ?? -1))
      .map((child) => `${id} before ${child}`)
  );
  // In flight at a kill: the job's log shows a claim by a killed worker that ended in a reap
  // (its handler may have run, even to its end, without the outcome being committed).
  // With `disrupt`, a live worker cut off from the storage may lose its leases too: those
  // claims, reaped the same way, are counted apart (without it, a live worker is never reaped).
  let inFlightAtKills = 0, reapedLive = 0;
  const unexplained: string[] = [];
  for (const id of ids) {
    const log = archived.get(id)?.events ?? await tf.events(id);
    const states = log.filter((e) => e.type === "state");
    let reaps = 0;
    states.forEach((event, i) => {
      if (event.state !== "Processing" || states[i + 1]?.state !== "Enqueued") return;
      const pid = Number(event.data?.serverId?.split(":").at(-2));
      reaps++;
      if (killed.has(pid)) inFlightAtKills++;
      else reapedLive++;
    });
    if ((starts.get(id) ?? 0) - 1 > reaps && unexplained.length < 3) {
      // What a rerun the log does not explain looked like, for whoever reads the failure.
      const pids = lines.filter((line) => line.startsWith(`start ${id} `)).map((l) =>
        l.split(" ")[2]
      );
      const trail = states.map((e) => `${e.state}${e.data?.serverId ? `@${e.data.serverId}` : ""}`);
      unexplained.push(`${id} started by [${pids}], log ${trail.join(" > ")}`);
    }
  }
  const duplicates = [...starts.values()].reduce((n, c) => n + c - 1, 0);
  const limits = options.limits && await checkLimits(options.limits, {
    lines: (await Deno.readTextFile(runsFile).catch(() => "")).split("\n").filter(Boolean),
    ids: limitedIds,
    killed,
    events: async (id) => archived.get(id)?.events ?? await tf.events(id),
  });
  if (limits) problems.push(...limits.problems);
  const neverRan = ids.filter((id) => !starts.has(id)).length;
  // Succeeded (kept or pruned) only after a handler ran to its end.
  const neverEnded = ids.filter((id) => !ended.has(id)).length;
  let consistent = true;
  try {
    await assertConsistent(tf.storage);
  } catch (error) {
    consistent = false;
    problems.push(`projections inconsistent: ${(error as Error).message.split("\n")[0]}`);
  }
  const { findings } = await doctor(tf.storage);
  if (findings.length) {
    consistent = false;
    problems.push(`doctor: ${findings.slice(0, 3).map((f) => `${f.id}: ${f.problem}`).join("; ")}`);
  }
  const { states, totals } = await tf.counts();
  if (totals.pruned !== pruned || states.Succeeded + pruned !== ids.length) {
    problems.push(
      `counters: ${states.Succeeded} Succeeded + ${totals.pruned} pruned for ${ids.length} jobs ` +
        `(${pruned} archived as Succeeded and gone)`,
    );
  }
  if (lost) problems.push(`${lost} jobs lost`);
  if (early.length) {
    problems.push(`${early.length} flow nodes started before a child ended: ${early[0]}`);
  }
  if (stuck) problems.push(`${stuck} jobs stuck in Processing/Enqueued/Scheduled`);
  if (notSucceeded) problems.push(`${notSucceeded} jobs did not end Succeeded`);
  if (neverRan) problems.push(`${neverRan} jobs never started`);
  if (neverEnded) problems.push(`${neverEnded} jobs never ran to their end`);
  const mayRerun = inFlightAtKills + (options.disrupt ? reapedLive : 0);
  if (duplicates > mayRerun) {
    problems.push(
      `${duplicates} duplicate runs, more than the ${inFlightAtKills} in flight at kills` +
        (options.disrupt ? ` and ${reapedLive} reaped from workers cut off by disruptions` : ""),
    );
    problems.push(...unexplained.map((line) => `rerun without a reap: ${line}`));
  }
  await tf.close();
  if (options.url.startsWith("kv:") && options.url.length > 3) {
    // SQLite's own check of the file (every worker has stopped; Deno KV has closed it).
    const db = new DatabaseSync(options.url.slice(3), { readOnly: true });
    try {
      const rows = db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
      const verdict = rows.map((row) => row.integrity_check).join("; ");
      if (verdict !== "ok") problems.push(`SQLite integrity_check: ${verdict.slice(0, 300)}`);
    } finally {
      db.close();
    }
  }
  if (problems.length === 0) await Deno.remove(dir, { recursive: true });
  else problems.push(`runs kept in ${dir}`);
  return {
    jobs: ids.length,
    kills,
    inFlightAtKills,
    lost,
    stuck,
    notSucceeded,
    pruned,
    duplicates,
    reapedLive,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    ...limits && {
      limitedMostAtOnce: limits.mostAtOnce,
      leaseExpiredRuns: limits.leaseExpiredRuns,
    },
    consistent,
    problems,
  };
}

/**
 * The jobs the workers archived before pruning them, by id (the last archiving of each: a
 * worker killed between archiving and removing leaves the job to another, which archives it
 * again). A line cut short by SIGKILL ends its file and is skipped.
 */
async function readArchives(
  root: string,
): Promise<Map<string, ArchivedJob>> {
  const jobs = new Map<string, ArchivedJob>();
  const dirs = await Array.fromAsync(Deno.readDir(root)).catch(() => []);
  for (const dir of dirs) {
    for await (const file of Deno.readDir(`${root}/${dir.name}`)) {
      const lines = (await Deno.readTextFile(`${root}/${dir.name}/${file.name}`)).split("\n");
      lines.forEach((line, i) => {
        if (!line) return;
        try {
          const job = JSON.parse(line);
          // A job archived twice keeps the archiving that shows a problem, if one does.
          const seen = jobs.get(job.record.id);
          if (seen && seen.record.state !== "Succeeded") return;
          jobs.set(job.record.id, job);
        } catch (error) {
          if (i < lines.length - 1) throw error;
        }
      });
    }
  }
  return jobs;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      storage: { type: "string", multiple: true },
      jobs: { type: "string", default: "10000" },
      seconds: { type: "string", default: "30" },
      "keep-succeeded-ms": { type: "string" },
      flows: { type: "string", default: "100" },
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "taskflow-chaos-kv-" });
  const redis = "redis://127.0.0.1:6379";
  const redisUp = await Deno.connect({ hostname: "127.0.0.1", port: 6379 }).then(
    (c) => (c.close(), true),
    () => false,
  );
  const urls = values.storage?.length ? values.storage : [
    `kv:${dir}/chaos.sqlite`,
    ...redisUp ? [`${redis}?prefix=chaos-${crypto.randomUUID().slice(0, 8)}`] : [],
  ];
  let failed = false;
  for (const url of urls) {
    console.log(`chaos on ${url}`);
    const report = await runChaos({
      url,
      jobs: Number(values.jobs),
      workers: 3,
      killForMs: Number(values.seconds) * 1_000,
      killEveryMs: 2_000,
      skewsMs: [60_000, -60_000],
      flows: Number(values.flows),
      limits: { concurrency: 5, jobs: Math.round(Number(values.jobs) / 10) },
      keepSucceededMs: values["keep-succeeded-ms"]
        ? Number(values["keep-succeeded-ms"])
        : undefined,
      log: (line) => console.log(`  ${line}`),
    });
    console.log(JSON.stringify(report, null, 2));
    failed ||= report.problems.length > 0;
    // A clean run's keys go; a failed run's stay for a look (its prefix is printed above).
    const prefix = url.startsWith("redis") ? new URL(url).searchParams.get("prefix") : null;
    if (prefix && !report.problems.length) await deletePrefix(prefix, redis);
  }
  await Deno.remove(dir, { recursive: true });
  Deno.exit(failed ? 1 : 0);
}
