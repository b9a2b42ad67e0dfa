/**
 * @module
 * Orphaned jobs: Processing jobs whose server stopped heartbeating. One pure decision, shared by
 * the client's read, the dashboard and the doctor. The rule is deliberately simple: a job is
 * orphaned when the server holding its lease has no live server record (records expire by
 * themselves after missed heartbeats); when it goes back to Enqueued is estimated from its
 * lease, because a live worker reaps a lease once it has run out.
 */

import type { JobRecord } from "./job.ts";
import type { Lease } from "./projection.ts";

/** A Processing job whose server stopped heartbeating. */
export interface Orphan {
  /** The job's id. */
  id: string;
  /** The server that held the job and stopped heartbeating. */
  serverId: string;
  /** When the job's lease runs out (ms since epoch); absent when the lease record is missing. */
  leaseUntil?: number;
  /** True when some live worker is left to put the job back to Enqueued. */
  reaper: boolean;
}

/** The ids of the servers whose record is live. */
export type LiveServers = ReadonlySet<string>;

/**
 * True when `job` is Processing under a server that has no live record (no lease read needed:
 * the record names the server that claimed it).
 */
export function isOrphaned(job: Pick<JobRecord, "state" | "serverId">, live: LiveServers): boolean {
  return job.state === "Processing" && !live.has(job.serverId ?? "");
}

/** The orphan mark of `job` with its `lease` (null when the job is not orphaned). */
export function orphanOf(
  job: Pick<JobRecord, "id" | "state" | "serverId">,
  lease: Lease | null,
  live: LiveServers,
): Orphan | null {
  if (job.state !== "Processing") return null;
  const serverId = lease?.serverId ?? job.serverId ?? "";
  if (live.has(serverId)) return null;
  return {
    id: job.id,
    serverId,
    ...(lease ? { leaseUntil: lease.until } : {}),
    reaper: live.size > 0,
  };
}

/** Whole seconds from `now` to `at`, rounded up (a countdown never shows 0 before its time). */
function secondsUntil(at: number, now: number): number {
  return Math.max(0, Math.ceil((at - now) / 1_000));
}

/**
 * What happens to an orphan next, for people: "server gone; back to Enqueued in ~12 s", "…at
 * the next reap" once its lease ran out, or why nothing will put it back.
 */
export function orphanText(orphan: Orphan, now: number): string {
  if (orphan.leaseUntil === undefined) {
    return "server gone; its lease is missing, so no worker reaps it (run deno task doctor)";
  }
  if (!orphan.reaper) return "server gone; back to Enqueued once a worker runs";
  const seconds = secondsUntil(orphan.leaseUntil, now);
  return seconds > 0
    ? `server gone; back to Enqueued in ~${seconds} s`
    : "server gone; back to Enqueued at the next reap";
}

/** The reads {@link readOrphans} makes: a TaskFlow client (or a storage) has them. */
export interface LivenessReader {
  /** The servers whose record is live. */
  servers(): Promise<ReadonlyArray<{ id: string }>>;
  /** A Processing job's lease, or null. */
  lease(id: string): Promise<Lease | null>;
}

/** The ids of `servers`, for {@link isOrphaned} and {@link orphanOf}. */
export function liveServers(servers: ReadonlyArray<{ id: string }>): LiveServers {
  return new Set(servers.map((server) => server.id));
}

/**
 * The orphan marks of `jobs` (null for the others), in their order. Reads the live servers
 * unless `live` is given, and the leases of the orphaned jobs only, so a healthy fleet costs
 * no lease read.
 *
 * @example
 * ```ts
 * import { orphanText, readOrphans, TaskFlow } from "./mod.ts";
 * const tf = await TaskFlow.open("memory:");
 * const { jobs } = await tf.list({ state: "Processing" });
 * for (const orphan of await readOrphans(tf, jobs)) {
 *   if (orphan) console.log(orphan.id, orphanText(orphan, Date.now()));
 * }
 * await tf.close();
 * ```
 */
export async function readOrphans(
  reader: LivenessReader,
  jobs: ReadonlyArray<Pick<JobRecord, "id" | "state" | "serverId">>,
  live?: LiveServers,
): Promise<(Orphan | null)[]> {
  const servers = live ?? liveServers(await reader.servers());
  return await Promise.all(jobs.map(async (job) => {
    if (!isOrphaned(job, servers)) return null;
    // No lease: the job left Processing after it was listed (the doctor reports lost leases).
    const lease = await reader.lease(job.id);
    return lease ? orphanOf(job, lease, servers) : null;
  }));
}

/** "lease expired 5 s ago" / "lease expires in 3 s", for the doctor's list. */
export function leaseText(orphan: Orphan, now: number): string {
  if (orphan.leaseUntil === undefined) return "lease missing";
  const ms = orphan.leaseUntil - now;
  return ms > 0
    ? `lease expires in ${secondsUntil(orphan.leaseUntil, now)} s`
    : `lease expired ${Math.floor(-ms / 1_000)} s ago`;
}
