/**
 * @module
 * The doctor: checks that every listed job's record is readable and equals the fold of its
 * events, that counters equal index sizes, and names Processing jobs whose server stopped
 * heartbeating, continuations left waiting for a parent that is gone, and jobs waiting for
 * dependencies whose pending count disagrees with them (lib/workflows/check.ts). Jobs removed
 * by the retention policy are no problem: the pruner never removes a parent while a continuation still
 * waits for it, so a missing parent of a finished or released job is simply a pruned one. It
 * reads only; `rebuild` repairs what the event logs can repair.
 */

import type { Storage } from "../storage/storage.ts";
import type { JobRecord } from "./job.ts";
import { leaseText, liveServers, type Orphan, orphanOf } from "./liveness.ts";
import { fold } from "./projection.ts";
import { checkWaiting } from "./workflows/check.ts";
import { STATES } from "./states.ts";

/** One problem found, about one job (or `"counters"`). */
export interface Finding {
  id: string;
  problem: string;
}

/** What the doctor found. */
export interface DoctorReport {
  /** Jobs examined (listed in a state index). */
  jobs: number;
  findings: Finding[];
}

/** Orphans the doctor names one by one; more are counted. */
const ORPHANS_NAMED = 20;

/** Examines every job and counter of `storage`; `now` is the clock lease times are read by. */
export async function doctor(
  storage: Storage,
  options: { now?: () => number } = {},
): Promise<DoctorReport> {
  const findings: Finding[] = [];
  const listed: Record<string, number> = {};
  const processing: JobRecord[] = [];
  const awaiting: JobRecord[] = [];
  const waiting: JobRecord[] = [];
  let jobs = 0;
  for (const state of STATES) {
    listed[state] = 0;
    let cursor: string | undefined;
    do {
      const page = await storage.list({ state, cursor, limit: 500 });
      jobs += page.jobs.length;
      listed[state] += page.jobs.length;
      // A page's jobs are examined together: their event reads overlap.
      const problems = await Promise.all(page.jobs.map((job) => examine(storage, job, state)));
      page.jobs.forEach((job, i) => {
        if (problems[i]) findings.push({ id: job.id, problem: problems[i]! });
        else if (state === "Processing") processing.push(job);
        else if (state === "Awaiting" && job.parentId !== undefined) awaiting.push(job);
        else if (state === "Awaiting" && job.dependsOn !== undefined) waiting.push(job);
      });
      cursor = page.cursor;
    } while (cursor);
  }
  const counts = await storage.counts();
  for (const state of STATES) {
    if (counts.states[state] !== listed[state]) {
      findings.push({
        id: "counters",
        problem: `${state}: the counter says ${counts.states[state]}, the index lists ${
          listed[state]
        } readable jobs`,
      });
    }
  }
  findings.push(...await strandedContinuations(storage, awaiting));
  findings.push(...await checkWaiting(storage, waiting));
  const orphans = await findOrphans(storage, processing);
  if (orphans.length) {
    findings.push({ id: "orphans", problem: orphanProblem(orphans, (options.now ?? Date.now)()) });
  }
  return { jobs, findings };
}

/**
 * Awaiting continuations whose parent is gone: nothing will ever release them. (A pruned parent
 * never strands one: the pruner keeps a parent while a continuation waits.)
 */
async function strandedContinuations(storage: Storage, awaiting: JobRecord[]): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (let i = 0; i < awaiting.length; i += 500) {
    const slice = awaiting.slice(i, i + 500);
    const parents = await storage.getMany(slice.map((job) => job.parentId!));
    slice.forEach((job, j) => {
      if (parents[j]) return;
      findings.push({
        id: job.id,
        problem: `waits in Awaiting for job ${job.parentId}, which does not exist: nothing will ` +
          "release it (delete it, or requeue it to run it anyway)",
      });
    });
  }
  // Re-read: the parent may have released it (and been pruned) since it was listed.
  const still = findings.length ? await storage.getMany(findings.map((f) => f.id)) : [];
  return findings.filter((_, i) => still[i]?.state === "Awaiting");
}

/** Processing jobs whose server has no live record, with their leases. */
async function findOrphans(storage: Storage, processing: JobRecord[]): Promise<Orphan[]> {
  const live = liveServers(await storage.servers());
  const found = await Promise.all(processing.map(async (job) => {
    if (live.has(job.serverId ?? "")) return null;
    const lease = await storage.lease(job.id);
    // No lease may only mean the job finished since it was listed: then it is no orphan.
    if (!lease && (await storage.get(job.id))?.state !== "Processing") return null;
    return orphanOf(job, lease, live);
  }));
  // Longest overdue first: those are the ones nobody is putting back.
  return found.filter((orphan): orphan is Orphan => orphan !== null)
    .sort((a, b) => (a.leaseUntil ?? -Infinity) - (b.leaseUntil ?? -Infinity));
}

/** "2 jobs whose server stopped heartbeating: a (server w1, lease expired 5 s ago), …". */
function orphanProblem(orphans: Orphan[], now: number): string {
  const named = orphans.slice(0, ORPHANS_NAMED).map((orphan) =>
    `${orphan.id} (server ${orphan.serverId}, ${leaseText(orphan, now)})`
  );
  const more = orphans.length > ORPHANS_NAMED ? `, and ${orphans.length - ORPHANS_NAMED} more` : "";
  const jobs = orphans.length === 1 ? "1 job" : `${orphans.length} jobs`;
  const next = orphans[0].reaper
    ? "a live worker puts them back to Enqueued once their lease runs out"
    : "no worker is running to put them back to Enqueued: start one";
  return `${jobs} whose server stopped heartbeating: ${named.join(", ")}${more}; ${next}`;
}

/** What is wrong with a job as its state index listed it (listings hold readable records). */
async function examine(
  storage: Storage,
  record: JobRecord,
  state: string,
): Promise<string | undefined> {
  if (record.state !== state) return `listed under ${state} but its record says ${record.state}`;
  try {
    const events = await storage.events(record.id);
    if (events.length === 0) return "its event log is missing";
    const folded = fold(record.id, events);
    const differing = Object.keys({ ...folded, ...record }).filter((key) =>
      JSON.stringify((folded as unknown as Record<string, unknown>)[key]) !==
        JSON.stringify((record as unknown as Record<string, unknown>)[key])
    );
    if (differing.length) return `its record differs from its events in ${differing.join(", ")}`;
  } catch (error) {
    return `cannot be read: ${(error as Error).message}`;
  }
  return undefined;
}
