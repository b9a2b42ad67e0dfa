/**
 * @module
 * The sweep that deletes expired jobs before any worker claims them: the head of each served
 * queue and the Scheduled jobs now due, each expired one moved to Deleted, "expired" (never
 * through Processing). Jobs deeper in a queue are met when they reach its head, where a claim
 * deletes them instead (claim_loop.ts); one started straight from Scheduled after its expiry
 * is deleted by the runner without running (see run.ts).
 */

import type { Commit, Storage } from "../../storage/storage.ts";
import { appendCommit } from "../changes.ts";
import { EXPIRED_REASON, isExpired } from "../expiry.ts";
import type { JobRecord } from "../job.ts";

/** Jobs read per queue head and from the due Scheduled jobs, per sweep. */
export const EXPIRY_PAGE = 100;

/** Deletes the expired jobs found at the head of `queues` and among due Scheduled jobs. */
export async function sweepExpired(
  storage: Storage,
  submit: (commit: Commit) => Promise<boolean>,
  how: { queues: readonly string[]; now: number },
): Promise<number> {
  const { queues, now } = how;
  const pages = await Promise.all([
    storage.due({ state: "Scheduled", before: now, limit: EXPIRY_PAGE }),
    ...queues.map(async (queue) => (await storage.list({ queue, limit: EXPIRY_PAGE })).jobs),
  ]);
  const expired = pages.flat().filter((job: JobRecord) =>
    (job.state === "Enqueued" || job.state === "Scheduled") && isExpired(job.options, now)
  );
  const deleted = await Promise.all(expired.map((job) => submit(expiredCommit(job, now))));
  return deleted.filter(Boolean).length;
}

/** The commit deleting `job` at `at` because it expired before it started. */
export function expiredCommit(job: JobRecord, at: number): Commit {
  return appendCommit(job, [{ type: "state", at, state: "Deleted", reason: EXPIRED_REASON }]);
}
