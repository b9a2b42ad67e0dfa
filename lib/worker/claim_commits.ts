/**
 * @module
 * The commits a worker's claims write: an Enqueued job moved to Processing under a fresh lease,
 * or deleted as expired when its expiry has passed.
 */

import type { Commit } from "../../storage/storage.ts";
import type { Lease } from "../projection.ts";
import { appendCommit } from "../changes.ts";
import type { NewEvent } from "../events.ts";
import type { JobRecord } from "../job.ts";
import { isExpired } from "../expiry.ts";
import { expiredCommit } from "./expire.ts";
import type { WorkerConfig } from "./config.ts";

/** The lease a claim at `now` takes for the worker of `config`. */
export function leaseAt(config: WorkerConfig, now: number): Lease {
  return { serverId: config.id, until: now + config.leaseMs };
}

/** The event of a claim at `at` under `lease`. */
export function processingEvent(at: number, lease: Lease): NewEvent {
  return {
    type: "state",
    at,
    state: "Processing",
    data: { serverId: lease.serverId, leaseUntil: lease.until },
  };
}

/**
 * Builds the commit moving an Enqueued job to Processing under a fresh lease, or to Deleted
 * "expired" when its expiry has passed (it never runs, and takes no slot), else null.
 */
export function claimBuilder(
  config: WorkerConfig,
  now = config.now(),
): (job: JobRecord) => Commit | null {
  const lease = leaseAt(config, now);
  return (job) => {
    if (job.state !== "Enqueued") return null;
    if (isExpired(job.options, now)) return expiredCommit(job, now);
    return appendCommit(job, [processingEvent(now, lease)], lease);
  };
}
