/**
 * @module
 * Retention policies: how long finished jobs are kept, for a deployment ({@link RetentionPolicy})
 * and per job ({@link JobKeep}), their defaults and their validation (typed `INVALID_OPTION`).
 */

import type { JobEvent } from "../events.ts";
import type { JobRecord } from "../job.ts";
import { checkFunctions, readOptions } from "../options.ts";
import { checkKeep, FINAL_KEYS, type Keep } from "./keep.ts";

export * from "./keep.ts";

/**
 * One finished job handed to an archive before it is removed: its record and full log.
 *
 * @example
 * ```ts
 * import type { ArchivedJob } from "../mod.ts";
 * const line = (job: ArchivedJob) => JSON.stringify(job); // one NDJSON line per job
 * console.log(typeof line);
 * ```
 */
export interface ArchivedJob {
  /** The job's record as it was removed. */
  record: JobRecord;
  /** The job's whole event log, oldest first. */
  events: JobEvent[];
}

/**
 * A deployment's retention: per final state, how long jobs are kept (absent states keep
 * {@link DEFAULT_RETENTION}'s rule), and optionally an archive that receives each slice of
 * jobs before they are removed.
 *
 * @example
 * ```ts
 * import { createWorker, type RetentionPolicy } from "../mod.ts";
 * const retention: RetentionPolicy = {
 *   succeeded: { maxAgeMs: 3_600_000 },
 *   failed: { maxCount: 10_000 },
 *   deleted: false,
 *   archive: async (jobs) => console.log(`archiving ${jobs.length} jobs`),
 * };
 * const worker = createWorker({ url: "memory:", jobs: [], retention });
 * console.log(worker.id);
 * ```
 */
export interface RetentionPolicy {
  /** Succeeded jobs (default: 24 hours). */
  succeeded?: Keep;
  /** Failed jobs (default: 30 days). */
  failed?: Keep;
  /** Deleted jobs (default: 24 hours). */
  deleted?: Keep;
  /** Receives each batch (record + full event log) before it is removed; pruning waits for it. */
  archive?: (jobs: ArchivedJob[]) => Promise<void>;
}

/**
 * A retention policy with every state's rule settled (what the pruner applies).
 *
 * @example
 * ```ts
 * import { DEFAULT_RETENTION, type ResolvedRetention } from "../mod.ts";
 * const policy: ResolvedRetention = { ...DEFAULT_RETENTION, deleted: false };
 * console.log(policy);
 * ```
 */
export interface ResolvedRetention {
  /** Succeeded jobs. */
  succeeded: Keep;
  /** Failed jobs. */
  failed: Keep;
  /** Deleted jobs. */
  deleted: Keep;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The retention in force when none is configured: Succeeded and Deleted jobs for 24 hours,
 * Failed jobs for 30 days (as Hangfire keeps succeeded and deleted jobs for a day).
 *
 * @example
 * ```ts
 * import { DEFAULT_RETENTION } from "../mod.ts";
 * console.log(DEFAULT_RETENTION.failed); // { maxAgeMs: 2592000000 }
 * ```
 */
export const DEFAULT_RETENTION: Readonly<ResolvedRetention> = Object.freeze({
  succeeded: Object.freeze({ maxAgeMs: DAY }),
  failed: Object.freeze({ maxAgeMs: 30 * DAY }),
  deleted: Object.freeze({ maxAgeMs: DAY }),
});

/**
 * Reads a worker's `retention` option: `false` keeps everything forever; otherwise each state's
 * rule is checked and absent ones come from {@link DEFAULT_RETENTION}.
 */
export function readRetention(
  value: unknown,
  where = "retention",
): { policy: ResolvedRetention; archive?: RetentionPolicy["archive"] } {
  if (value === false) return { policy: { succeeded: false, failed: false, deleted: false } };
  if (value === undefined) return { policy: { ...DEFAULT_RETENTION } };
  const read = readOptions(value, {
    call: where,
    where,
    allowed: [...FINAL_KEYS, "archive"],
  });
  checkFunctions(read, ["archive"], { where, optional: true });
  const policy = { ...DEFAULT_RETENTION };
  for (const key of FINAL_KEYS) {
    if (read[key] !== undefined) policy[key] = checkKeep(read[key], `${where}.${key}`);
  }
  return { policy, archive: read.archive as RetentionPolicy["archive"] };
}

/** Whether two resolved policies keep the same jobs. */
export function samePolicy(a: ResolvedRetention, b: ResolvedRetention): boolean {
  return FINAL_KEYS.every((key) => JSON.stringify(a[key]) === JSON.stringify(b[key]));
}

/** `Keep` as people read it: "24h", "10000 newest", "forever", "24h and 10000 newest". */
export function keepText(keep: Keep): string {
  if (keep === false) return "forever";
  const parts: string[] = [];
  if (keep.maxAgeMs !== undefined) parts.push(durationText(keep.maxAgeMs));
  if (keep.maxCount !== undefined) parts.push(`${keep.maxCount} newest`);
  return parts.join(" and ");
}

/** 86400000 → "24h", 90000 → "90s", 2592000000 → "30d". */
export function durationText(ms: number): string {
  for (const [unit, size] of [["d", DAY], ["h", HOUR], ["m", 60_000], ["s", 1_000]] as const) {
    if (ms >= size && ms % size === 0 && !(unit === "d" && ms / DAY < 2)) {
      return `${ms / size}${unit}`;
    }
  }
  return `${ms}ms`;
}
