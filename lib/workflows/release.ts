/**
 * @module
 * Dependencies as projections: a waiting job's pending count moves in each dependency's own
 * commit (a `dependency` event on the dependent, in the same change), and the last one releases
 * it in that change too. Pure decisions, and the reads of the dependents a change must carry.
 */

import type { Commit, Storage } from "../../storage/storage.ts";
import { DependencyFailedError } from "../../storage/errors.ts";
import { appendCommit } from "../commits.ts";
import type { NewEvent } from "../events.ts";
import type { JobRecord } from "../job.ts";
import { FINAL_STATES, type State } from "../states.ts";

/**
 * Most commits a change releasing dependents carries before a cascade (a dependent failing
 * with its dependency, and its own dependents after it) stops: a KV atomic checks at most 100
 * keys. A dependent past it is told but stays Awaiting; `settleWaiting` releases it.
 */
export const CHANGE_BUDGET = 90;

/** True for Succeeded, Failed and Deleted. */
export function isFinal(state: State): boolean {
  return FINAL_STATES.includes(state);
}

/** True when `commit` moves a job with dependents into or out of a final state. */
export function notifiesDependents(commit: Commit): boolean {
  if (!commit.record.dependents?.length) return false;
  const before = commit.expect > 0 && commit.before ? isFinal(commit.before.state) : false;
  return before !== isFinal(commit.record.state);
}

/** True when `record` waits for dependencies and may leave Awaiting now. */
export function releasable(record: JobRecord): boolean {
  return record.state === "Awaiting" && record.dependsOn !== undefined && !record.staged &&
    (((record.pending ?? 0) <= 0) ||
      (record.failedDependency !== undefined && record.options.onDependencyFailure !== "run"));
}

/**
 * The state event that releases a waiting job, or undefined while it must wait: Failed (or
 * Deleted, by its `onDependencyFailure`) once a dependency ended Failed or Deleted; else, once
 * every dependency is final, Enqueued (Scheduled when its `runAt` is still ahead).
 */
export function releaseEvent(record: JobRecord, at: number): NewEvent | undefined {
  if (!releasable(record)) return undefined;
  const failed = record.failedDependency;
  const policy = record.options.onDependencyFailure ?? "fail";
  if (failed && policy !== "run") {
    const reason = `dependency ${failed.id} ended ${failed.state}`;
    if (policy === "delete") return { type: "state", at, state: "Deleted", reason };
    const { name, message, code } = new DependencyFailedError(failed.id, failed.state);
    return { type: "state", at, state: "Failed", reason, data: { error: { name, message, code } } };
  }
  const all = record.dependsOn!;
  const reason = all.length === 0
    ? `its flow ${record.flowId} was created`
    : all.length === 1
    ? `its dependency ${all[0]} finished`
    : `all ${all.length} of its dependencies finished`;
  const runAt = record.options.runAt;
  if (runAt !== undefined && runAt > at) {
    return { type: "state", at, state: "Scheduled", reason, data: { runAt } };
  }
  return { type: "state", at, state: "Enqueued", reason };
}

/** The `dependency` event telling `dependent` that `dependency` entered its state. */
function notice(dependency: JobRecord, at: number): NewEvent {
  return { type: "dependency", at, id: dependency.id, state: dependency.state };
}

/**
 * The commits on the dependents of the jobs `head` moves into or out of a final state, to go in
 * the same change: each still waiting dependent is told (its pending count moves) and released
 * when that was the last; one released into Failed or Deleted tells its own dependents, and so
 * on, within {@link CHANGE_BUDGET} (past it, or when it has continuations, a dependent is told
 * and left to `settleWaiting`).
 */
export async function dependentCommits(
  storage: Pick<Storage, "getMany">,
  head: Commit | Commit[],
  at: number,
): Promise<Commit[]> {
  const heads = Array.isArray(head) ? head : [head];
  // Per dependent: the record it was read at, and the events for it so far (merged into one
  // commit: a job appears once per change).
  const told = new Map<string, { before: JobRecord; events: NewEvent[]; commit: Commit }>();
  const inHead = new Set(heads.map((c) => c.id));
  let budget = CHANGE_BUDGET - heads.length;
  const queue = heads.filter(notifiesDependents);
  while (queue.length) {
    const commit = queue.shift()!;
    const ids = commit.record.dependents!.filter((id) => !inHead.has(id));
    const unread = ids.filter((id) => !told.has(id));
    const read = new Map((await storage.getMany(unread)).map((r, i) => [unread[i], r]));
    for (const id of ids) {
      const known = told.get(id);
      const record = known?.commit.record ?? read.get(id);
      if (!record || record.state !== "Awaiting" || !record.dependsOn?.includes(commit.id)) {
        continue;
      }
      const before = known?.before ?? record;
      const events = [...known?.events ?? [], notice(commit.record, at)];
      let next = appendCommit(before, events);
      if (!known) budget--;
      const release = releaseEvent(next.record, at);
      if (release) {
        const released = appendCommit(before, [...events, release]);
        const followers = next.record.dependents?.length ?? 0;
        const continues = next.record.continuations.length > 0;
        const cascades = isFinal(released.record.state) && (followers > 0 || continues);
        // One with continuations is left to settleWaiting, whose write releases them too.
        if (!cascades || (!continues && followers <= budget)) {
          events.push(release);
          next = released;
          if (cascades) queue.push(next);
        }
      }
      told.set(id, { before, events, commit: next });
    }
  }
  return [...told.values()].map((t) => t.commit);
}
