/**
 * @module
 * What a job keeps: the {@link Keep} rule of a policy, a job's own {@link JobKeep}, and their
 * validation. A leaf module (jobs and events import it; it imports no job types).
 */

import { InvalidOptionError } from "../../storage/errors.ts";
import { checkDelay, guard, readOptions } from "../options.ts";

/**
 * How long jobs of one final state are kept: by age (`maxAgeMs` after entering the state)
 * and/or by count (the newest `maxCount` are kept); `false` keeps them forever.
 *
 * @example
 * ```ts
 * import type { Keep } from "../mod.ts";
 * const day: Keep = { maxAgeMs: 86_400_000 };
 * const newest: Keep = { maxCount: 10_000 };
 * const forever: Keep = false;
 * console.log(day, newest, forever);
 * ```
 */
export type Keep = { maxAgeMs?: number; maxCount?: number } | false;

/**
 * A per-job rule for one final state: keep forever, or for `maxAgeMs` after entering it.
 *
 * @example
 * ```ts
 * import type { JobKeepRule } from "../mod.ts";
 * const week: JobKeepRule = { maxAgeMs: 7 * 86_400_000 };
 * console.log(week);
 * ```
 */
export type JobKeepRule = false | { maxAgeMs: number };

/**
 * A job's own retention, overriding the policy for that job: `false` (keep forever),
 * `{ maxAgeMs }` (any final state), or `{ succeeded?, failed?, deleted? }`, each `false` or
 * `{ maxAgeMs }` (states left out follow the policy). Set in `defineJob` defaults or as the
 * `keep` option of enqueue, schedule, continueWith and batch items; stored in the job's created
 * event, so it is part of the record (`record.keep`).
 *
 * @example
 * ```ts
 * import { defineJob, TaskFlow } from "../mod.ts";
 * const invoice = defineJob("invoice", () => "sent", { keep: { succeeded: false } });
 * const tf = await TaskFlow.open("memory:");
 * await tf.enqueue(invoice, {});
 * await tf.enqueue("ping", {}, { keep: { maxAgeMs: 60_000 } });
 * await tf.close();
 * ```
 */
export type JobKeep = JobKeepRule | {
  succeeded?: JobKeepRule;
  failed?: JobKeepRule;
  deleted?: JobKeepRule;
};

/** The final states retention applies to, as policy keys. */
export const FINAL_KEYS = ["succeeded", "failed", "deleted"] as const;
/** A final state as a policy key. */
export type FinalKey = typeof FINAL_KEYS[number];

/** Most jobs a count rule may keep. */
const MAX_COUNT = 1_000_000_000;

/** Reads one {@link Keep} (`where` names it in errors); returns a checked copy. */
export function checkKeep(value: unknown, where: string): Keep {
  if (value === false) return false;
  const rule = "must be false (keep forever) or { maxAgeMs?, maxCount? } with at least one of them";
  if (typeof value !== "object" || value === null) throw new InvalidOptionError(where, value, rule);
  const read = readOptions(value, { call: where, where, allowed: ["maxAgeMs", "maxCount"] });
  const keep: { maxAgeMs?: number; maxCount?: number } = {};
  if (read.maxAgeMs !== undefined) keep.maxAgeMs = checkDelay(read.maxAgeMs, `${where}.maxAgeMs`);
  if (read.maxCount !== undefined) {
    const n = read.maxCount;
    if (!(Number.isInteger(n) && (n as number) >= 0 && (n as number) <= MAX_COUNT)) {
      throw new InvalidOptionError(
        `${where}.maxCount`,
        n,
        `must be an integer from 0 to ${MAX_COUNT}`,
      );
    }
    keep.maxCount = n as number;
  }
  if (keep.maxAgeMs === undefined && keep.maxCount === undefined) {
    throw new InvalidOptionError(where, value, rule);
  }
  return keep;
}

function checkJobKeepRule(value: unknown, where: string): JobKeepRule {
  if (value === false) return false;
  const rule = "must be false (keep forever) or { maxAgeMs }";
  if (typeof value !== "object" || value === null) throw new InvalidOptionError(where, value, rule);
  const read = readOptions(value, { call: where, where, allowed: ["maxAgeMs"] });
  if (read.maxAgeMs === undefined) throw new InvalidOptionError(where, value, rule);
  return { maxAgeMs: checkDelay(read.maxAgeMs, `${where}.maxAgeMs`) };
}

/** Reads a job's `keep` option (see {@link JobKeep}); returns a checked copy. */
export function checkJobKeep(value: unknown, where: string): JobKeep {
  if (value === false) return false;
  const rule = "must be false, { maxAgeMs } or { succeeded?, failed?, deleted? }";
  if (typeof value !== "object" || value === null) throw new InvalidOptionError(where, value, rule);
  const keys = guard(where, () => Object.keys(value));
  if (keys.includes("maxAgeMs") || keys.includes("maxCount")) {
    if (keys.includes("maxCount")) {
      throw new InvalidOptionError(
        `${where}.maxCount`,
        (value as { maxCount: unknown }).maxCount,
        "a job's keep has no count (a count is a policy over many jobs); use maxAgeMs",
      );
    }
    return checkJobKeepRule(value, where);
  }
  const read = readOptions(value, { call: where, where, allowed: [...FINAL_KEYS] });
  const keep: { succeeded?: JobKeepRule; failed?: JobKeepRule; deleted?: JobKeepRule } = {};
  for (const key of FINAL_KEYS) {
    if (read[key] !== undefined) keep[key] = checkJobKeepRule(read[key], `${where}.${key}`);
  }
  if (!Object.keys(keep).length) throw new InvalidOptionError(where, value, rule);
  return keep;
}

/** The policy key of a final state, or undefined for a state retention never applies to. */
export function finalKey(state: string): FinalKey | undefined {
  return state === "Succeeded"
    ? "succeeded"
    : state === "Failed"
    ? "failed"
    : state === "Deleted"
    ? "deleted"
    : undefined;
}

/** The job's own rule for `key`, when its `keep` sets one (undefined: the policy decides). */
export function ownRule(keep: JobKeep | undefined, key: FinalKey): JobKeepRule | undefined {
  if (keep === undefined || keep === false) return keep;
  if ("maxAgeMs" in keep) return keep as { maxAgeMs: number };
  return (keep as Record<FinalKey, JobKeepRule | undefined>)[key];
}
