/**
 * @module
 * The pruning decision, pure: which rule keeps a finished job, whether it has expired, and
 * whether something still depends on it. The pass (pass.ts) only reads and writes around it.
 */

import type { BatchRecord } from "../batch.ts";
import type { JobRecord } from "../job.ts";
import {
  type FinalKey,
  finalKey,
  type JobKeepRule,
  type Keep,
  ownRule,
  type ResolvedRetention,
} from "./policy.ts";

/** The rule that decides a job's fate in its state: its own `keep`, else the policy's. */
export interface EffectiveRule {
  /** The rule. */
  keep: Keep | JobKeepRule;
  /** True when it is the job's own `keep` (such jobs are exempt from count rules). */
  own: boolean;
}

/** The rule for `record` in its current (final) state; undefined for a non-final state. */
export function effectiveRule(
  record: JobRecord,
  policy: ResolvedRetention,
): EffectiveRule | undefined {
  const key = finalKey(record.state);
  if (!key) return undefined;
  const own = ownRule(record.keep, key);
  return own === undefined ? { keep: policy[key], own: false } : { keep: own, own: true };
}

/** True when `keep` has an age and the job has been in its state for at least that long. */
export function expiredByAge(record: JobRecord, keep: Keep | JobKeepRule, now: number): boolean {
  return keep !== false && keep.maxAgeMs !== undefined && record.stateAt + keep.maxAgeMs <= now;
}

/** How many jobs of a state a count rule removes: those beyond the newest `maxCount`. */
export function countExcess(inState: number, keep: Keep): number {
  if (keep === false || keep.maxCount === undefined) return 0;
  return Math.max(0, inState - keep.maxCount);
}

/** What the decision needs to know about a job's dependants, read by the pass. */
export interface Dependants {
  /** Records of continuations by id (null: gone). */
  jobs: ReadonlyMap<string, JobRecord | null>;
  /** Batch records by id (null: gone). */
  batches: ReadonlyMap<string, BatchRecord | null>;
}

/** The ids whose records {@link blockedBy} reads for `record`: continuations, dependents. */
export function dependantIds(record: JobRecord): string[] {
  return [...record.continuations.map((c) => c.id), ...record.dependents ?? []];
}

/**
 * Why `record` must stay whatever its rule says, or undefined when it may go: a non-final
 * job; a job with a continuation or a dependent that has not finished (Awaiting, or released
 * and not yet done: it may still read this job's result); a batch member while its batch is being created
 * or open, or while the batch's continuation has not finished.
 */
export function blockedBy(record: JobRecord, deps: Dependants): string | undefined {
  if (!finalKey(record.state)) return `it is ${record.state}`;
  for (const { id } of record.continuations) {
    const state = deps.jobs.get(id)?.state;
    if (state && !finalKey(state)) return `its continuation ${id} is ${state}`;
  }
  // A dependent reads this job's result when it runs: kept until every dependent finished.
  for (const id of record.dependents ?? []) {
    const state = deps.jobs.get(id)?.state;
    if (state && !finalKey(state)) return `its dependent ${id} is ${state}`;
  }
  if (record.batchId !== undefined) {
    const batch = deps.batches.get(record.batchId);
    if (batch && (batch.state === "creating" || batch.state === "open")) {
      return `its batch ${record.batchId} is ${batch.state}`;
    }
    const state = batch?.thenId === undefined ? undefined : deps.jobs.get(batch.thenId)?.state;
    if (state && !finalKey(state)) return `its batch's continuation ${batch!.thenId} is ${state}`;
  }
  return undefined;
}

/** Which phase of a pass looks at a job: the policy's age, its count, or the job's own age. */
export type Phase = "age" | "count" | "own";

/**
 * Whether a pass phase may remove `record` (dependants aside): in the age phase, when the
 * effective rule's age has passed; in the count phase, when the policy (not the job's own
 * keep) decides it; in the own phase, when the job's own age has passed.
 */
export function removable(
  record: JobRecord,
  phase: Phase,
  policy: ResolvedRetention,
  now: number,
): boolean {
  const rule = effectiveRule(record, policy);
  if (!rule) return false;
  if (phase === "count") return !rule.own;
  if (phase === "own" && !rule.own) return false;
  return expiredByAge(record, rule.keep, now);
}

/** A state's policy key for a record's state (re-exported for the pass). */
export type { FinalKey };
