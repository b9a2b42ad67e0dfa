/**
 * @module
 * The retention policy in force, stored in `storage.settings` under id "retention" so that
 * every worker and dashboard shows the same one. Each worker writes its policy at start
 * (compare-and-set); when workers disagree, the last one started wins.
 */

import type { RecurringRecord, Storage } from "../../storage/storage.ts";
import { ConflictError } from "../../storage/errors.ts";
import {
  checkKeep,
  FINAL_KEYS,
  type Keep,
  keepText,
  type ResolvedRetention,
  samePolicy,
} from "./policy.ts";

/** The settings record id of the policy in force. */
export const RETENTION_ID = "retention";

/**
 * The retention policy in force as stored (an archive function cannot be stored: `archive`
 * says whether the worker that stored it archives before removing).
 *
 * @example
 * ```ts
 * import { TaskFlow } from "../mod.ts";
 * const tf = await TaskFlow.open("memory:");
 * const stored = await tf.retention(); // null until a worker has started
 * console.log(stored?.succeeded ?? "no policy stored yet");
 * await tf.close();
 * ```
 */
export interface StoredRetention {
  /** Succeeded jobs. */
  succeeded: Keep;
  /** Failed jobs. */
  failed: Keep;
  /** Deleted jobs. */
  deleted: Keep;
  /** Slices are archived before removal. */
  archive: boolean;
  /** When it was stored (ms since epoch). */
  updatedAt: number;
  /** The server id of the worker that stored it. */
  by: string;
  /**
   * The newest pruning pass recorded (by any worker, or `tf.prune()`), when there was one:
   * when it ended, who ran it, jobs removed per state, expired jobs kept for their dependants,
   * how often that worker prunes (`everyMs`; absent for a manual prune), and why it removed
   * nothing on purpose or failed (`problem`).
   */
  lastPass?: {
    at: number;
    by: string;
    removed: { succeeded: number; failed: number; deleted: number };
    kept: number;
    everyMs?: number;
    problem?: string;
  };
  /** The newest pass that removed at least one job (same shape as `lastPass`). */
  lastRemoval?: StoredRetention["lastPass"];
}

/** Reads the stored policy; null when none is stored or the stored one is not readable. */
export async function readStoredRetention(storage: Storage): Promise<StoredRetention | null> {
  const record = await storage.settings.get(RETENTION_ID);
  return record ? storedOf(record) : null;
}

/**
 * The policy a pruner applies now: the stored one, else `fallback`. `archivedBy` names who stored
 * a policy that archives when this pruner has no archive: it must not prune then, or it would
 * drop logs the others keep.
 */
export async function policyInForce(
  storage: Storage,
  fallback: ResolvedRetention,
  hasArchive: boolean,
): Promise<{ policy: ResolvedRetention; archivedBy?: string }> {
  const stored = await readStoredRetention(storage);
  if (stored?.archive && !hasArchive) return { policy: stored, archivedBy: stored.by };
  return { policy: stored ?? fallback };
}

function storedOf(record: RecurringRecord): StoredRetention | null {
  try {
    const policy = {} as ResolvedRetention;
    for (const key of FINAL_KEYS) policy[key] = checkKeep(record[key], key);
    return {
      ...policy,
      archive: record.archive === true,
      updatedAt: Number(record.updatedAt) || 0,
      by: String(record.by ?? ""),
    };
  } catch {
    // A damaged record reads as none; the next worker to start writes a good one.
    return null;
  }
}

/** What {@link publishRetention} found: the policy it replaced, when it was a different one. */
export interface Published {
  /** The different policy that was in force before. */
  replaced?: StoredRetention;
}

/**
 * Stores `policy` as the one in force (compare-and-set, retried on a race). An identical
 * policy stored already is left as it is.
 */
export async function publishRetention(
  storage: Storage,
  policy: ResolvedRetention,
  how: { archive: boolean; by: string; now: number },
): Promise<Published> {
  for (let tries = 0; tries < 10; tries++) {
    const current = await storage.settings.get(RETENTION_ID);
    const stored = current ? storedOf(current) : null;
    if (stored && samePolicy(stored, policy) && stored.archive === how.archive) return {};
    const record: RecurringRecord = {
      id: RETENTION_ID,
      version: (current?.version ?? 0) + 1,
      succeeded: policy.succeeded,
      failed: policy.failed,
      deleted: policy.deleted,
      archive: how.archive,
      updatedAt: how.now,
      by: how.by,
    };
    if (await storage.settings.put(record, current?.version ?? 0)) {
      return stored ? { replaced: stored } : {};
    }
  }
  throw new ConflictError(`settings:${RETENTION_ID}`, 10);
}

/** A policy as one line: "succeeded 24h, failed 30d, deleted 24h". */
export function policyText(policy: ResolvedRetention & { archive?: boolean }): string {
  const text = FINAL_KEYS.map((key) => `${key} ${keepText(policy[key])}`).join(", ");
  return policy.archive ? `${text}, archived before removal` : text;
}
