/**
 * @module
 * Building commits from events: a new job's, and one appended to a job's current record.
 */

import type { Commit } from "../storage/storage.ts";
import type { CreatedEvent, JobEvent, NewEvent } from "./events.ts";
import type { JobRecord } from "./job.ts";
import { create, type Lease, project } from "./projection.ts";

/** A commit creating job `id` from its created event and its first state event(s). */
export function createCommit(
  id: string,
  created: Omit<CreatedEvent, "seq">,
  then: NewEvent[],
): Commit {
  const events = numbered(0, [traceLast(created), ...then]);
  let record = create(id, events[0]);
  for (const event of events.slice(1)) record = project(record, event);
  return { id, expect: 0, events, record };
}

/**
 * `created` with its trace fields last, whatever the call that built it added after them: the
 * log codec stores a created event as implied by the record only in that field order.
 */
function traceLast(created: Omit<CreatedEvent, "seq">): Omit<CreatedEvent, "seq"> {
  const { traceparent, tracestate } = created;
  if (traceparent === undefined) return created;
  const { traceparent: _p, tracestate: _s, ...rest } = created;
  return tracestate === undefined ? { ...rest, traceparent } : { ...rest, traceparent, tracestate };
}

/** A commit appending `events` to a job whose current record is `record`. */
export function appendCommit(record: JobRecord, events: NewEvent[], lease?: Lease): Commit {
  const numberedEvents = numbered(record.version, events);
  let next = record;
  for (const event of numberedEvents) next = project(next, event);
  const commit: Commit = {
    id: record.id,
    expect: record.version,
    events: numberedEvents,
    record: next,
    before: record,
  };
  if (lease) commit.lease = lease;
  return commit;
}

function numbered(version: number, events: NewEvent[]): JobEvent[] {
  return events.map((event, i) => ({ ...event, seq: version + i + 1 }) as JobEvent);
}
