/**
 * @module
 * The doctor's checks of waiting jobs: each one's pending count (its projection) against its
 * dependencies' states as stored now, and dependencies that are gone.
 */

import type { Storage } from "../../storage/storage.ts";
import type { JobRecord } from "../job.ts";
import { isFinal, releasable } from "./release.ts";

/** One problem found about a waiting job. */
export interface WaitingFinding {
  /** The waiting job. */
  id: string;
  /** What is wrong, and what to do. */
  problem: string;
}

/** What is wrong with `job` (Awaiting, with dependencies) given its dependencies' records. */
function problemOf(job: JobRecord, deps: (JobRecord | null)[]): string | undefined {
  const ids = job.dependsOn!;
  const gone = ids.filter((_, i) => !deps[i]);
  if (gone.length) {
    return `waits for ${gone.join(", ")}, which ${gone.length === 1 ? "does" : "do"} not ` +
      "exist: nothing will release it (delete it, or requeue it to run it anyway)";
  }
  const open = deps.filter((d) => !isFinal(d!.state)).length;
  if (open !== job.pending) {
    return `its pending count says ${job.pending} but ${open} of its ${ids.length} dependencies ` +
      "are not final (a dependency's write was lost below the storage API)";
  }
  if (releasable(job)) {
    return "may be released (its dependencies are final): a worker's sweep releases it";
  }
  return undefined;
}

/**
 * Waiting jobs whose count disagrees with their dependencies, whose dependencies are gone, or
 * that could be released but are not; each re-read before it is named (a dependency may have
 * finished between the reads).
 */
export async function checkWaiting(
  storage: Storage,
  awaiting: readonly JobRecord[],
): Promise<WaitingFinding[]> {
  const examine = async (jobs: readonly JobRecord[]) => {
    const found: WaitingFinding[] = [];
    for (const job of jobs) {
      if (job.state !== "Awaiting" || !job.dependsOn) continue;
      const problem = problemOf(job, await storage.getMany(job.dependsOn));
      if (problem) found.push({ id: job.id, problem });
    }
    return found;
  };
  const first = await examine(awaiting);
  if (!first.length) return [];
  const again = await storage.getMany(first.map((f) => f.id));
  const still = new Set(
    (await examine(again.filter((r) => r !== null) as JobRecord[])).map((f) => f.id),
  );
  return first.filter((f) => still.has(f.id));
}
