/**
 * @module
 * Building commits from events, releasing continuations with their parent's commit, and the
 * compare-and-set retry loop every read-decide-write operation goes through.
 */

import type { AppendResult, Change, Commit, Storage } from "../storage/storage.ts";
import { ConflictError, JobNotFoundError } from "../storage/errors.ts";
import type { JobRecord } from "./job.ts";
import { systemClock } from "./clock.ts";
import { FINAL_STATES } from "./states.ts";
import { appendCommit } from "./commits.ts";
import { dependentCommits, notifiesDependents } from "./workflows/release.ts";

export { appendCommit, createCommit } from "./commits.ts";

/** How many times a read-decide-write operation re-reads after losing a race. */
export const MAX_TRIES = 50;

/**
 * The commits that move a finished parent's Awaiting continuations on: `finished` ones to
 * Enqueued, `succeeded` ones to Enqueued if the parent succeeded, else to Deleted.
 */
export function releaseCommits(
  parent: JobRecord,
  children: (JobRecord | null)[],
  at: number,
): Commit[] {
  if (!FINAL_STATES.includes(parent.state)) return [];
  const commits: Commit[] = [];
  for (const child of children) {
    if (!child || child.state !== "Awaiting" || child.parentId !== parent.id) continue;
    const proceed = child.on === "finished" || parent.state === "Succeeded";
    commits.push(appendCommit(child, [{
      type: "state",
      at,
      state: proceed ? "Enqueued" : "Deleted",
      reason: proceed
        ? `parent ${parent.id} ${parent.state.toLowerCase()}`
        : `parent ${parent.id} ended ${parent.state}; this continuation runs only after success`,
    }]));
  }
  return commits;
}

/**
 * Wraps a job's commit into a change that also releases its continuations when it finishes,
 * and tells its dependents (lib/workflows/release.ts) when it enters or leaves a final state.
 */
export async function withContinuations(
  storage: Pick<Storage, "getMany">,
  commit: Commit,
  at: number,
): Promise<Change> {
  if (!releases(commit)) return { commits: [commit] };
  const parent = commit.record;
  const continuing = parent.continuations.length > 0 && FINAL_STATES.includes(parent.state);
  const children = continuing ? await storage.getMany(parent.continuations.map((c) => c.id)) : [];
  const released = continuing ? releaseCommits(parent, children, at) : [];
  return { commits: [commit, ...released, ...await dependentCommits(storage, commit, at)] };
}

/**
 * True when `commit` finishes a job that has continuations, or moves a job with dependents
 * into or out of a final state (see {@link withContinuations}).
 */
export function releases(commit: Commit): boolean {
  const parent = commit.record;
  return (parent.continuations.length > 0 && FINAL_STATES.includes(parent.state)) ||
    notifiesDependents(commit);
}

/**
 * Reads job `id`, lets `decide` build its commit, writes it (with continuation releases), and
 * repeats on a conflict. `decide` may throw to refuse (e.g. a forbidden transition).
 */
export async function updateJob(
  storage: Storage,
  submit: (change: Change) => Promise<AppendResult>,
  id: string,
  decide: (record: JobRecord) => Commit | Promise<Commit>,
  now: () => number,
  random: () => number = systemClock.random,
): Promise<JobRecord> {
  for (let tries = 1; tries <= MAX_TRIES; tries++) {
    const record = await storage.get(id);
    if (!record) throw new JobNotFoundError(id);
    const commit = await decide(record);
    const change = await withContinuations(storage, commit, now());
    const result = await submit(change);
    if (result.ok) return commit.record;
    await backoff(tries, random);
  }
  throw new ConflictError(id, MAX_TRIES);
}

/** Waits a short random time after a lost race, so that racing writers spread out. */
export function backoff(tries: number, random = systemClock.random): Promise<void> {
  const ms = random() * Math.min(2 ** tries, 100);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
