/**
 * @module
 * `explain`: why a job is where it is and what it waits for, as data and in words. Reads only
 * what the commits keep (the record, its lease, live servers, paused queues, queue limits, the
 * records it waits for); decides nothing and writes nothing.
 */

import type { Storage } from "../../storage/storage.ts";
import { JobNotFoundError } from "../../storage/errors.ts";
import { batchIdOf, batchStatus, STAGED } from "../batch.ts";
import { checkJobId, DEFAULT_ATTEMPTS, type JobRecord } from "../job.ts";
import { liveServers, orphanOf } from "../liveness.ts";
import { FINAL_STATES } from "../states.ts";
import { retryDelay } from "../worker/retry.ts";
import { ago, inTime } from "./words.ts";

/** What holds a job (or ended it); `text` says it for people. */
export type Reason =
  | { kind: "finished"; text: string; at: number }
  | { kind: "due"; text: string; at: number }
  | { kind: "retry"; text: string; at: number; attempt: number; attempts: number }
  | { kind: "expires"; text: string; at: number }
  | { kind: "paused"; text: string; queue: string }
  | { kind: "no_worker"; text: string; queue: string }
  | { kind: "limit"; text: string; queue: string }
  | { kind: "ready"; text: string; queue: string }
  | { kind: "running"; text: string; serverId: string; leaseUntil?: number }
  | { kind: "worker_gone"; text: string; serverId: string; leaseUntil?: number }
  | { kind: "parent"; text: string; ids: string[] }
  | { kind: "batch"; text: string; batchId: string; done: number; total: number }
  | { kind: "staged"; text: string; batchId?: string }
  | { kind: "dependencies"; text: string; ids: string[] }
  | { kind: "awaiting"; text: string }
  | { kind: "attempts"; text: string; attempt: number; attempts: number; nextDelayMs?: number };

/** Why job `id` is where it is. */
export interface Explanation {
  /** The job's id. */
  id: string;
  /** Its state now. */
  state: JobRecord["state"];
  /** The reasons, most telling first. */
  reasons: Reason[];
  /** The reasons in one line, e.g. "Enqueued: queue mail is paused; ...". */
  summary: string;
  /** When it was read (ms since epoch). */
  at: number;
}

/** The reads {@link explain} makes beyond the storage: the queue limits' verdict. */
export interface ExplainReads {
  /** Why an Enqueued job waits under its queue's limits (`tf.queues.waiting`). */
  limits(job: JobRecord): Promise<string | undefined>;
  /** The clock. */
  now(): number;
}

/** Explains job `id`; throws `JobNotFoundError` when there is none. */
export async function explain(
  storage: Storage,
  id: string,
  reads: ExplainReads,
): Promise<Explanation> {
  checkJobId(id);
  const job = await storage.get(id);
  if (!job) throw new JobNotFoundError(id);
  const now = reads.now();
  const reasons = await reasonsOf(storage, job, { ...reads, at: now });
  const summary = `${job.state}: ${reasons.map((r) => r.text).join("; ")}`;
  return { id, state: job.state, reasons, summary, at: now };
}

type Reads = ExplainReads & { at: number };

async function reasonsOf(storage: Storage, job: JobRecord, reads: Reads): Promise<Reason[]> {
  const { at } = reads;
  if (FINAL_STATES.includes(job.state)) return [finished(job, at)];
  const reasons: Reason[] = [];
  switch (job.state) {
    case "Scheduled":
      reasons.push(due(job, at), ...await queueReasons(storage, job));
      break;
    case "Enqueued": {
      const held = await queueReasons(storage, job);
      const limit = await reads.limits(job);
      if (limit) held.push({ kind: "limit", text: limit, queue: job.queue });
      reasons.push(...held);
      if (!held.length) {
        reasons.push({
          kind: "ready",
          text: `ready: the next free worker of queue ${job.queue} takes it`,
          queue: job.queue,
        });
      }
      break;
    }
    case "Awaiting": {
      const held = await awaiting(storage, job);
      // Nothing known holds it (e.g. its dependencies all ended): its own reason says why.
      const fallback: Reason = { kind: "awaiting", text: job.reason ?? "awaiting" };
      reasons.push(...held.length ? held : [fallback]);
      break;
    }
    case "Processing":
      reasons.push(await processing(storage, job, at));
      break;
  }
  if (job.state !== "Awaiting") reasons.push(attempts(job));
  const expiresAt = job.options.expiresAt;
  if (expiresAt !== undefined && job.state !== "Processing") {
    reasons.push({
      kind: "expires",
      text: `deleted unstarted if not started ${inTime(expiresAt, at)}`,
      at: expiresAt,
    });
  }
  return reasons;
}

function finished(job: JobRecord, at: number): Reason {
  const when = ago(job.stateAt, at);
  const text = job.state === "Succeeded"
    ? `succeeded ${when}`
    : job.state === "Failed"
    ? `failed ${when}: ${job.error?.message ?? job.reason ?? "no error recorded"}`
    : `deleted ${when}${job.reason ? `: ${job.reason}` : ""}`;
  return { kind: "finished", text, at: job.stateAt };
}

function due(job: JobRecord, at: number): Reason {
  const runAt = job.runAt ?? job.stateAt;
  const when = runAt > at ? `due ${inTime(runAt, at)}` : `due since ${ago(runAt, at)}`;
  if (job.retryOf === undefined) return { kind: "due", text: when, at: runAt };
  const attempts = job.options.attempts ?? DEFAULT_ATTEMPTS;
  const error = job.error ? ` (${job.error.message})` : "";
  return {
    kind: "retry",
    text: `retry after attempt ${job.retryOf} of ${attempts} failed${error}: ${when}`,
    at: runAt,
    attempt: job.retryOf,
    attempts,
  };
}

/** Its queue paused, or served by no live worker. */
async function queueReasons(storage: Storage, job: JobRecord): Promise<Reason[]> {
  const [paused, servers] = await Promise.all([storage.pausedQueues(), storage.servers()]);
  const reasons: Reason[] = [];
  const queue = job.queue;
  if (paused.includes(queue)) {
    reasons.push({ kind: "paused", text: `queue ${queue} is paused`, queue });
  }
  if (!servers.some((server) => server.queues.includes(queue))) {
    const live = servers.length
      ? `the ${servers.length} live worker(s) serve ${
        [...new Set(servers.flatMap((s) => s.queues))].join(", ")
      }`
      : "no worker is running";
    reasons.push({
      kind: "no_worker",
      text: `no live worker serves queue ${queue} (${live})`,
      queue,
    });
  }
  return reasons;
}

async function awaiting(storage: Storage, job: JobRecord): Promise<Reason[]> {
  const reasons: Reason[] = [];
  const member = batchIdOf(job.id);
  if (job.reason === STAGED) {
    reasons.push({ kind: "staged", text: STAGED, batchId: job.batchId ?? member?.batchId });
  }
  if (job.parentId !== undefined) {
    const parent = await storage.get(job.parentId);
    const on = job.on === "finished" ? "finishes" : "succeeds";
    reasons.push({
      kind: "parent",
      text: `waits for parent ${job.parentId} (${parent?.state ?? "gone"}): runs when it ${on}`,
      ids: [job.parentId],
    });
  }
  if (member?.then) {
    const status = await batchStatus(storage, member.batchId);
    if (status) {
      const runs = status.batch.on === "finished" ? "finish" : "succeed";
      reasons.push({
        kind: "batch",
        text: `waits for batch ${member.batchId}: ${status.done} of ${status.batch.total} ` +
          `finished; runs when all ${runs}`,
        batchId: member.batchId,
        done: status.done,
        total: status.batch.total,
      });
    }
  }
  if (job.dependsOn?.length) {
    const records = await storage.getMany(job.dependsOn);
    const open = job.dependsOn.flatMap((id, i) => {
      const state = records[i]?.state;
      return state && FINAL_STATES.includes(state) ? [] : [`${id} (${state ?? "gone"})`];
    });
    if (open.length) {
      reasons.push({
        kind: "dependencies",
        text: `waits for ${open.length} of ${job.dependsOn.length} dependencies: ${
          open.join(", ")
        }`,
        ids: job.dependsOn.filter((_, i) =>
          !FINAL_STATES.includes(records[i]?.state ?? "Awaiting")
        ),
      });
    }
  }
  return reasons;
}

async function processing(storage: Storage, job: JobRecord, at: number): Promise<Reason> {
  const [lease, servers] = await Promise.all([storage.lease(job.id), storage.servers()]);
  const orphan = orphanOf(job, lease, liveServers(servers));
  const serverId = lease?.serverId ?? job.serverId ?? "";
  const leaseUntil = lease?.until;
  if (orphan) {
    const then = leaseUntil === undefined
      ? "its lease is missing (run deno task doctor)"
      : `its lease ${leaseUntil > at ? "expires" : "expired"} ${
        leaseUntil > at ? inTime(leaseUntil, at) : ago(leaseUntil, at)
      }, then ${
        orphan.reaper
          ? "a live worker puts it back to Enqueued"
          : "the next worker to start reaps it"
      }`;
    return {
      kind: "worker_gone",
      text: `its worker ${serverId} is gone: ${then}`,
      serverId,
      leaseUntil,
    };
  }
  const since = job.startedAt === undefined ? "" : ` since ${ago(job.startedAt, at)}`;
  const until = leaseUntil === undefined ? "" : `, lease until ${inTime(leaseUntil, at)}`;
  return { kind: "running", text: `running on ${serverId}${since}${until}`, serverId, leaseUntil };
}

/** The attempt count and what a failure of this attempt would bring, by the stored options. */
function attempts(job: JobRecord): Reason {
  const max = job.options.attempts ?? DEFAULT_ATTEMPTS;
  const attempt = job.state === "Processing" ? job.attempt : job.attempt + 1;
  if (attempt >= max) {
    return {
      kind: "attempts",
      text: `attempt ${attempt} of ${max}: if it fails, it ends Failed`,
      attempt,
      attempts: max,
    };
  }
  // The middle of the jitter; a worker's definition may set its own backoff.
  const nextDelayMs = retryDelay(job.options.backoff, attempt, undefined, () => 0.5);
  return {
    kind: "attempts",
    text: `attempt ${attempt} of ${max}: if it fails, retried about ${
      inTime(nextDelayMs, 0).replace(/^in /, "")
    } later`,
    attempt,
    attempts: max,
    nextDelayMs,
  };
}
