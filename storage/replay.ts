/**
 * @module
 * One job's replay change for a rebuild, shared by the backends that rebuild by appending the
 * derived records again (Redis, PostgreSQL).
 */

import type { JobEvent } from "../lib/events.ts";
import type { JobRecord } from "../lib/job.ts";
import type { Lease } from "../lib/projection.ts";
import { createdLater } from "./effects.ts";
import type { Change, Derive } from "./storage.ts";

/** Unique key → the job holding it, the earliest created winning (as the live writes decide). */
export type Holders = Map<string, Pick<JobRecord, "createdAt" | "id">>;

/**
 * The change that writes job `id` again from `events`, noting its unique key in `holders`; none
 * when its log does not fold. `kept` holds the leases as stored: a heartbeat may have extended a
 * lease past the one recorded at claim time.
 */
export function replayChange(
  id: string,
  events: JobEvent[],
  how: { derive: Derive; holders: Holders; kept: Map<string, Lease> },
): Change[] {
  const derived = how.derive(id, events);
  if (!derived) return [];
  const { record, lease } = derived;
  const unique = record.options.unique?.key;
  const held = unique === undefined ? undefined : how.holders.get(unique);
  if (unique !== undefined && (!held || !createdLater(held, record))) {
    how.holders.set(unique, { createdAt: record.createdAt, id: record.id });
  }
  const leased = how.kept.get(id);
  const commit = { id, expect: 0, events, record };
  if (!lease) return [{ commits: [commit] }];
  return [{
    commits: [{ ...commit, lease: leased?.serverId === lease.serverId ? leased : lease }],
  }];
}
