/**
 * @module
 * Recomputes every projection from the event logs: the repair for projections that were lost,
 * corrupted or written by a buggy version. Run it while no worker writes to the storage.
 */

import type { RebuildResult, Storage } from "../storage/storage.ts";
import { TaskFlowError } from "../storage/errors.ts";
import { fold, leaseOf } from "./projection.ts";
import { rebuildLimiterRecords } from "./queues/rebuild.ts";

/** What {@link rebuild} did: the storage's rebuild, and the queues whose limiter records it rewrote. */
export interface RebuildReport extends RebuildResult {
  /** Queues with a rate limit whose windows were recomputed from the logs. */
  limiters: string[];
}

/**
 * Rebuilds records, indexes, counters, time buckets and leases of every job from its events,
 * then the queues' rate windows from the claims in the logs. Jobs whose log cannot be folded (a
 * gap, a forbidden transition) are left out and named.
 *
 * @example
 * ```ts
 * import { rebuild, TaskFlow } from "./mod.ts";
 * const tf = await TaskFlow.open("memory:");
 * const { jobs } = await rebuild(tf.storage);
 * console.log(`rebuilt ${jobs} jobs`);
 * ```
 */
export async function rebuild(storage: Storage): Promise<RebuildReport> {
  const result = await storage.rebuild((id, events) => {
    try {
      const record = fold(id, events);
      return { record, lease: leaseOf(record, events) };
    } catch (error) {
      if (error instanceof TaskFlowError) return null; // a broken log: reported, left out
      throw error;
    }
  });
  return { ...result, limiters: await rebuildLimiterRecords(storage, Date.now()) };
}
