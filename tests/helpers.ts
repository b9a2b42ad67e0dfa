/**
 * @module
 * Test helpers: a controllable clock, bounded polling, invariant checks, and claim/finish
 * commits built the way the worker builds them.
 */

import assert from "node:assert/strict";
import { appendCommit } from "../lib/changes.ts";
import type { JobRecord } from "../lib/job.ts";
import { fold } from "../lib/projection.ts";
import { STATES } from "../lib/states.ts";
import type { Commit, Storage } from "../storage/storage.ts";

/** A clock tests move by hand. */
export class TestClock {
  t: number;
  constructor(start = Math.floor(Date.now() / 1000) * 1000) {
    this.t = start;
  }
  now = (): number => this.t;
  advance(ms: number): number {
    return this.t += ms;
  }
}

/** Polls `check` until it stops throwing, for at most `timeoutMs`. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** A commit claiming `record` for `serverId` (as the worker does). */
export function claimCommit(
  record: JobRecord,
  at: number,
  serverId = "srv-1",
  leaseMs = 30_000,
): Commit {
  const until = at + leaseMs;
  return appendCommit(record, [{
    type: "state",
    at,
    state: "Processing",
    data: { serverId, leaseUntil: until },
  }], { serverId, until });
}

/** Every job id in every state index, paging through `list`. */
export async function allIds(storage: Storage, strict = true): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const state of STATES) {
    let cursor: string | undefined;
    do {
      const page = await storage.list({ state, cursor, limit: 200 });
      for (const job of page.jobs) {
        if (!strict) {
          ids.set(job.id, state);
          continue;
        }
        assert.equal(job.state, state, `job ${job.id} listed under ${state} but is ${job.state}`);
        assert.ok(!ids.has(job.id), `job ${job.id} listed twice`);
        ids.set(job.id, state);
      }
      cursor = page.cursor;
    } while (cursor);
  }
  return ids;
}

/**
 * The invariants of event sourcing: each job's record equals the fold of its events, gauges
 * equal the sizes of the state indexes, per-queue Enqueued gauges equal the ready indexes.
 */
export async function assertConsistent(storage: Storage): Promise<void> {
  const ids = await allIds(storage);
  for (const id of ids.keys()) {
    const [record, events] = await Promise.all([storage.get(id), storage.events(id)]);
    assert.deepEqual(record, fold(id, events), `record of ${id} differs from its fold`);
  }
  const counts = await storage.counts();
  const perState = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const state of ids.values()) perState[state]++;
  assert.deepEqual(counts.states, perState, "state gauges differ from index sizes");
  let retrying = 0, cursor: string | undefined;
  do {
    const page = await storage.list({ state: "Scheduled", cursor, limit: 200 });
    retrying += page.jobs.filter((job) => job.retryOf !== undefined).length;
    cursor = page.cursor;
  } while (cursor);
  assert.equal(counts.retrying, retrying, "the retrying gauge differs from the retries listed");
  for (const [queue, gauges] of Object.entries(counts.queues)) {
    let ready = 0, cursor: string | undefined;
    do {
      const page = await storage.list({ queue, cursor, limit: 200 });
      ready += page.jobs.length;
      cursor = page.cursor;
    } while (cursor);
    assert.equal(gauges.Enqueued, ready, `queue ${queue}: Enqueued gauge differs from ready index`);
  }
}

/** A seeded pseudo-random generator (mulberry32). */
export function seeded(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `storage` with some of its methods replaced (to count, record or lie); every other member is
 * the storage's own.
 */
export function overriding(storage: Storage, methods: Partial<Storage>): Storage {
  return new Proxy(storage, {
    get(target, property) {
      if (Object.hasOwn(methods, property)) return methods[property as keyof Storage];
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const ROOT = new URL("..", import.meta.url).pathname;

/** How {@link spawnWorkerProcess} starts a worker. */
export interface WorkerProcessOptions {
  url: string;
  /** The job module (relative to the project root). */
  jobs: string;
  /** The file the jobs record their runs in (TASKFLOW_TEST_RUNS). */
  runs: string;
  /** More CLI flags, after the defaults (a repeated flag wins). */
  args?: string[];
  /** What happens to the worker's output (default "piped"). */
  output?: "piped" | "null";
  /** What happens to its standard error, when not as `output`. */
  stderr?: "piped" | "null";
}

/** Starts `main.ts worker` in a subprocess. */
export function spawnWorkerProcess(options: WorkerProcessOptions): Deno.ChildProcess {
  const output = options.output ?? "piped";
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "main.ts",
      "worker",
      "--storage",
      options.url,
      "--jobs",
      options.jobs,
      ...options.args ?? [],
    ],
    cwd: ROOT,
    env: { TASKFLOW_TEST_RUNS: options.runs, NO_COLOR: "1" },
    stdout: output,
    stderr: options.stderr ?? output,
  }).spawn();
}
