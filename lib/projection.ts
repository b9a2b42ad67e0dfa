/**
 * @module
 * The pure fold from events to the job record. Every backend stores the result of
 * {@link project} as the job's record; `fold(events(id))` must equal that stored record.
 */

import { CorruptRecordError, InvalidTransitionError } from "../storage/errors.ts";
import type { DependencyEvent, JobEvent, StateEvent } from "./events.ts";
import type { JobRecord } from "./job.ts";
import { canTransition, FINAL_STATES } from "./states.ts";

/** A Processing job's lease: which server holds it, and until when. */
export interface Lease {
  /** The server that holds the lease. */
  serverId: string;
  /** When the lease expires (ms since epoch). */
  until: number;
}

/**
 * Applies one event to a record (null before the job exists) and returns the new record.
 * Throws {@link InvalidTransitionError} when the transition table forbids a state event, and
 * {@link CorruptRecordError} when the events are out of order.
 */
export function project(record: JobRecord | null, event: JobEvent): JobRecord {
  const expected = (record?.version ?? 0) + 1;
  const id = record?.id ?? "?";
  if (event.seq !== expected) {
    throw new CorruptRecordError(id, `event seq ${event.seq} follows version ${expected - 1}`);
  }
  if (event.type === "created") {
    if (record) throw new CorruptRecordError(id, "a second created event");
    throw new CorruptRecordError("?", "created events need an id; use create()");
  }
  if (!record) throw new CorruptRecordError("?", `first event is ${event.type}, not created`);
  if (record.version === 1 && event.type !== "state") {
    // The state a record shows before its first state event is a placeholder, never real.
    throw new CorruptRecordError(record.id, `a ${event.type} event before the first state event`);
  }
  const next: JobRecord = { ...record, version: event.seq };
  switch (event.type) {
    case "state":
      return enter(next, record, event);
    case "progress":
      next.progress = event.value;
      return next;
    case "log":
      return next;
    case "continuation":
      next.continuations = [...record.continuations, { id: event.childId, on: event.on }];
      return next;
    case "deduplicated":
      next.deduplicated = (record.deduplicated ?? 0) + 1;
      return next;
    case "dependent":
      next.dependents = [...record.dependents ?? [], event.childId];
      return next;
    case "dependency":
      return countDependency(next, event);
    case "unstaged":
      delete next.staged;
      return next;
    case "debounced":
      if (record.state !== "Scheduled") {
        throw new InvalidTransitionError(record.id, record.state, "Scheduled (debounced)");
      }
      next.args = event.args;
      next.runAt = event.runAt;
      next.debounced = (record.debounced ?? 0) + 1;
      return next;
  }
}

/** The record of a job right after its created event. */
export function create(id: string, event: JobEvent): JobRecord {
  if (event.type !== "created" || event.seq !== 1) {
    throw new CorruptRecordError(id, `first event is ${event.type} #${event.seq}, not created #1`);
  }
  const record: JobRecord = {
    id,
    name: event.name,
    queue: event.queue,
    args: event.args,
    priority: event.priority,
    options: event.options,
    // A record is never stored in this interim state: a created event always travels with
    // the first state event, which sets state and stateAt.
    state: "Enqueued",
    stateAt: event.at,
    createdAt: event.at,
    version: 1,
    attempt: 0,
    continuations: [],
  };
  if (event.parentId !== undefined) {
    record.parentId = event.parentId;
    record.on = event.on;
  }
  if (event.batchId !== undefined) record.batchId = event.batchId;
  if (event.dependsOn !== undefined) {
    record.dependsOn = event.dependsOn;
    record.pending = event.dependsOn.length;
  }
  if (event.dependents !== undefined) record.dependents = event.dependents;
  if (event.flowId !== undefined) record.flowId = event.flowId;
  if (event.staged) record.staged = true;
  if (event.options.keep !== undefined) record.keep = event.options.keep;
  // Copied to the record: the worker opens each attempt's span from the record it claims.
  if (event.traceparent !== undefined) record.traceparent = event.traceparent;
  if (event.tracestate !== undefined) record.tracestate = event.tracestate;
  return record;
}

function enter(next: JobRecord, before: JobRecord, event: StateEvent): JobRecord {
  const from = before.version === 1 ? null : before.state;
  if (!canTransition(from, event.state)) {
    throw new InvalidTransitionError(before.id, from, event.state);
  }
  const data = event.data ?? {};
  next.state = event.state;
  next.stateAt = event.at;
  if (event.reason === undefined) delete next.reason;
  else next.reason = event.reason;
  delete next.runAt;
  delete next.retryOf;
  switch (event.state) {
    case "Scheduled":
      next.runAt = data.runAt ?? event.at;
      if (data.retryOf !== undefined) next.retryOf = data.retryOf;
      // A snoozed run gives its attempt back: the next claim counts the same number again.
      if (data.snoozed) next.attempt = Math.max(0, before.attempt - 1);
      if (data.error) next.error = data.error;
      if (data.durationMs !== undefined) next.durationMs = data.durationMs;
      break;
    case "Enqueued":
      if (data.resetAttempts) next.attempt = 0;
      // Put back before its handler started (claimed ahead): the next claim counts it again.
      else if (data.unstarted) next.attempt = Math.max(0, before.attempt - 1);
      break;
    case "Processing":
      next.attempt = before.attempt + 1;
      next.serverId = data.serverId;
      next.startedAt = event.at;
      delete next.progress;
      break;
    case "Succeeded":
      if (data.result !== undefined) next.result = data.result;
      else delete next.result;
      if (data.durationMs !== undefined) next.durationMs = data.durationMs;
      delete next.error;
      break;
    case "Failed":
      if (data.error) next.error = data.error;
      if (data.durationMs !== undefined) next.durationMs = data.durationMs;
      break;
  }
  return next;
}

/**
 * A dependency entered a state: into a final one it is done (pending goes down; Failed or
 * Deleted is remembered while the first to end so), out of one it is pending again. Only what
 * a dependent that still waits is told: its log says each dependency's finality once per change.
 */
function countDependency(next: JobRecord, event: DependencyEvent): JobRecord {
  if (!next.dependsOn?.includes(event.id)) {
    throw new CorruptRecordError(next.id, `a dependency event of ${event.id}, not a dependency`);
  }
  const final = FINAL_STATES.includes(event.state);
  next.pending = (next.pending ?? 0) + (final ? -1 : 1);
  if (final && event.state !== "Succeeded" && !next.failedDependency) {
    next.failedDependency = { id: event.id, state: event.state };
  } else if (!final && next.failedDependency?.id === event.id) {
    delete next.failedDependency;
  }
  return next;
}

/** Folds a job's whole event log into its record. */
export function fold(id: string, events: readonly JobEvent[]): JobRecord {
  if (events.length === 0) throw new CorruptRecordError(id, "no events");
  let record = create(id, events[0]);
  for (let i = 1; i < events.length; i++) record = project(record, events[i]);
  if (events.length === 1) throw new CorruptRecordError(id, "created without a state event");
  return record;
}

/** The lease granted by the last claim, when the job is still Processing. */
export function leaseOf(record: JobRecord, events: readonly JobEvent[]): Lease | null {
  if (record.state !== "Processing") return null;
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i];
    if (event.type === "state" && event.state === "Processing") {
      return { serverId: event.data?.serverId ?? "", until: event.data?.leaseUntil ?? event.at };
    }
  }
  return null;
}
