/**
 * @module
 * Retention as people read it on the dashboard: when a finished job will be pruned, and why a
 * job id that TaskFlow made is probably gone. Pure; the pages read the policy and records.
 */

import { batchIdOf } from "../batch.ts";
import { idCreatedAt, type JobRecord } from "../job.ts";
import { blockedBy, type Dependants, effectiveRule } from "./decide.ts";
import { durationText, FINAL_KEYS, keepText, type ResolvedRetention } from "./policy.ts";

/** Ids encoding a time before this were not made by TaskFlow (2020-01-01). */
const EARLIEST = 1_577_836_800_000;
/** Clock skew between the producer that made an id and the reader. */
const SKEW_MS = 5 * 60_000;

/**
 * The creation time (ms since epoch) an id made by TaskFlow encodes, or undefined when `id`
 * is not in that format or encodes an implausible time (a custom id, most likely).
 */
export function jobIdTime(id: string, now: number): number | undefined {
  // A batch member's or continuation's id carries its batch's generated id.
  const at = idCreatedAt(batchIdOf(id)?.batchId ?? id);
  return at !== undefined && at >= EARLIEST && at <= now + SKEW_MS ? at : undefined;
}

/** "3 days", "5 hours", "1 minute": an age, rounded down to its largest unit. */
export function ageText(ms: number): string {
  const units = [["day", 86_400_000], ["hour", 3_600_000], ["minute", 60_000]] as const;
  for (const [unit, size] of units) {
    const n = Math.floor(ms / size);
    if (n >= 1) return `${n} ${unit}${n === 1 ? "" : "s"}`;
  }
  return `${Math.max(0, Math.floor(ms / 1_000))} seconds`;
}

/**
 * Why a job id that is not found was probably pruned: only when TaskFlow made the id and it
 * is older than an age rule of the policy in force; undefined otherwise (then: no such job).
 * Count rules are left out: they say nothing about how old a pruned job was.
 */
export function prunedText(id: string, policy: ResolvedRetention, now: number): string | undefined {
  const createdAt = jobIdTime(id, now);
  if (createdAt === undefined) return undefined;
  const age = now - createdAt;
  const rules = FINAL_KEYS.flatMap((key) => {
    const keep = policy[key];
    return keep !== false && keep.maxAgeMs !== undefined && keep.maxAgeMs <= age
      ? [`${key} jobs after ${durationText(keep.maxAgeMs)}`]
      : [];
  });
  if (!rules.length) return undefined;
  return `job ${id} was created ${ageText(age)} ago; the retention policy prunes ` +
    `${rules.join(" and ")}, so it was probably pruned`;
}

/**
 * When the retention policy (or the job's own `keep`) prunes `record`, as a sentence; undefined
 * for a job that is not finished. `deps` are its continuations and batch, as far as the page
 * read them; `when` words the time it becomes due ("around <time> (in 3 h)").
 */
export function pruneForecast(
  record: JobRecord,
  policy: ResolvedRetention,
  deps: Dependants,
  when: (at: number) => string,
): string | undefined {
  const rule = effectiveRule(record, policy);
  if (!rule) return undefined;
  const whose = rule.own ? "its own keep" : "the retention policy";
  const state = record.state.toLowerCase();
  const keep = rule.keep;
  if (keep === false) return `kept forever by ${whose} (${state} jobs: forever)`;
  const blocked = blockedBy(record, deps);
  const until = blocked ? `kept while ${blocked}, then pruned` : "will be pruned";
  const count = "maxCount" in keep ? keep.maxCount : undefined;
  const byCount = count === undefined ? "" : `once ${count} newer ${state} jobs exist`;
  const text = `by ${whose} (${state} jobs: ${keepText(keep)})`;
  if (keep.maxAgeMs === undefined) return `${until} ${byCount} ${text}`;
  return `${until} ${when(record.stateAt + keep.maxAgeMs)} ${text}` +
    (byCount ? `, or sooner ${byCount}` : "");
}
