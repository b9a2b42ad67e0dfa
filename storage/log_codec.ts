/**
 * @module
 * A compact, lossless text encoding of job logs, and of a finished job as one string (its record
 * and whole log), for backends that keep finished jobs collapsed. Backend-neutral: it knows the
 * shapes of events and records (types only), never how one folds into the other; every
 * shortcut is checked when encoding, so any record and log round-trip exactly.
 *
 * An event is a JSON array: `[at, state, data?, rest?]` for a state event (`data` 0 when absent
 * but `rest` is not), `[at, "." + type, rest?]` for the others; `rest` holds the fields not named
 * here, and `seq` only when it is not the event's place in the log plus one.
 *
 * A collapsed job is lines joined by "\n" (JSON never holds a raw newline): first its record
 * without `id` and without the fields its last event restores (see {@link encodeRecord}), then
 * one line per event, where the first line may be {@link IMPLIED}: the created event that
 * {@link impliedCreated} makes of the record.
 */

import type { JobEvent } from "../lib/events.ts";
import type { JobRecord } from "../lib/job.ts";
import { CorruptRecordError } from "./errors.ts";

/** The line standing for the created event the record implies (see {@link impliedCreated}). */
export const IMPLIED = "=";
/** Record field listing the fields of the last event's data that the record does not have. */
const ABSENT = "-";

type Fields = Record<string, unknown>;

/** Event `event`, the `index`-th of its log (from 0), as one line. */
export function encodeEvent(event: JobEvent, index: number): string {
  const { type, at, seq, ...rest } = event as unknown as Fields & { type: string; seq: number };
  if (seq !== index + 1) (rest as Fields).seq = seq;
  if (type === "state") {
    const { state, data, ...others } = rest as Fields;
    if (typeof state === "string" && !state.startsWith(".") && data !== 0) {
      const line: unknown[] = [at, state];
      const more = Object.keys(others).length > 0;
      if (data !== undefined || more) line.push(data ?? 0);
      if (more) line.push(others);
      return JSON.stringify(line);
    }
  }
  return JSON.stringify(Object.keys(rest).length ? [at, `.${type}`, rest] : [at, `.${type}`]);
}

/** The `index`-th event of job `id`'s log from its line; throws when it is not one. */
export function decodeEvent(id: string, line: string, index: number): JobEvent {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new CorruptRecordError(id, `event ${index + 1} of the stored log is not JSON`);
  }
  if (!Array.isArray(value) || typeof value[1] !== "string") {
    throw new CorruptRecordError(id, `event ${index + 1} of the stored log is not an event`);
  }
  const [at, head, body, rest] = value as [unknown, string, unknown, unknown];
  const event: Fields = head.startsWith(".") ? { type: head.slice(1), at, ...(body as Fields) } : {
    type: "state",
    at,
    state: head,
    ...(body === 0 || body === undefined ? {} : { data: body }),
    ...(rest as Fields),
  };
  event.seq ??= index + 1;
  return event as unknown as JobEvent;
}

/**
 * The created event a record implies: what a job's first event holds when the record still
 * carries it unchanged. A guess, compared as a line with the stored first event before it
 * stands for it ({@link IMPLIED}).
 */
export function impliedCreated(record: JobRecord): JobEvent {
  const event: Fields = {
    type: "created",
    at: record.createdAt,
    name: record.name,
    queue: record.queue,
    args: record.args,
    priority: record.priority,
    options: record.options,
  };
  if (record.parentId !== undefined) event.parentId = record.parentId;
  if (record.on !== undefined) event.on = record.on;
  if (record.batchId !== undefined) event.batchId = record.batchId;
  event.seq = 1;
  return event as unknown as JobEvent;
}

/**
 * The record line of a collapsed job: `record` without its id, and without the fields its last
 * event `last` (a state event) restores: `state` and `stateAt` when they are that event's, and
 * each field of the event's data that the record holds with the same value. `last` is left out
 * (undefined) when it is the job's first event.
 */
export function encodeRecord(record: JobRecord, last: JobEvent | undefined): string {
  const { id: _, ...rest } = record as unknown as Fields;
  if (last?.type !== "state") return JSON.stringify(rest);
  if (rest.state === last.state && rest.stateAt === last.at) {
    delete rest.state;
    delete rest.stateAt;
  }
  const absent: string[] = [];
  for (const [field, value] of Object.entries(last.data ?? {})) {
    if (rest[field] === undefined) absent.push(field);
    else if (JSON.stringify(rest[field]) === JSON.stringify(value)) delete rest[field];
  }
  if (absent.length) rest[ABSENT] = absent;
  return JSON.stringify(rest);
}

/** The record of job `id` from its record line and its last event (see {@link encodeRecord}). */
export function decodeRecord(id: string, line: string, last: JobEvent | undefined): JobRecord {
  let rest: Fields;
  try {
    rest = JSON.parse(line);
  } catch {
    throw new CorruptRecordError(id, "the stored record is not JSON");
  }
  if (typeof rest !== "object" || rest === null || Array.isArray(rest)) {
    throw new CorruptRecordError(id, "the stored record is not a job record");
  }
  const record: Fields = { id, ...rest };
  if (last?.type === "state") {
    if (!("state" in record)) {
      record.state = last.state;
      record.stateAt = last.at;
    }
    const absent = new Set(Array.isArray(rest[ABSENT]) ? rest[ABSENT] as string[] : []);
    delete record[ABSENT];
    for (const [field, value] of Object.entries(last.data ?? {})) {
      if (!absent.has(field) && !(field in record)) record[field] = value;
    }
  }
  if (typeof record.state !== "string") {
    throw new CorruptRecordError(id, "the stored record is not a job record");
  }
  return record as unknown as JobRecord;
}

/** A finished job as one string: its record and whole log (see the module comment). */
export function encodeCollapsed(record: JobRecord, events: readonly JobEvent[]): string {
  const lines = events.map(encodeEvent);
  if (lines.length > 1 && lines[0] === encodeEvent(impliedCreated(record), 0)) lines[0] = IMPLIED;
  return [encodeRecord(record, events.length > 1 ? events.at(-1) : undefined), ...lines].join(
    "\n",
  );
}

/** Job `id`'s record and log from {@link encodeCollapsed}'s string; throws when it is broken. */
export function decodeCollapsed(
  id: string,
  text: string,
): { record: JobRecord; events: JobEvent[] } {
  const lines = text.split("\n");
  const n = lines.length - 1;
  const { record, last } = recordOfLines(id, lines[0], lines[n], n);
  const events = new Array<JobEvent>(n);
  for (let i = 0; i < n; i++) {
    const line = lines[i + 1];
    events[i] = i === 0 && line === IMPLIED
      ? impliedCreated(record)
      : i === n - 1 && last
      ? last
      : decodeEvent(id, line, i);
  }
  return { record, events };
}

/** Only the record of {@link decodeCollapsed}: the events before the last are not parsed. */
export function decodeCollapsedRecord(id: string, text: string): JobRecord {
  const end = text.indexOf("\n");
  if (end < 0) return recordOfLines(id, text, text, 0).record;
  let n = 0;
  for (let at = end; at >= 0; at = text.indexOf("\n", at + 1)) n++;
  return recordOfLines(id, text.slice(0, end), text.slice(text.lastIndexOf("\n") + 1), n).record;
}

/** The record from a collapsed job's record line and last line, of `n` event lines. */
function recordOfLines(
  id: string,
  line: string,
  lastLine: string,
  n: number,
): { record: JobRecord; last: JobEvent | undefined } {
  const last = n > 1 && lastLine !== IMPLIED ? decodeEvent(id, lastLine, n - 1) : undefined;
  return { record: decodeRecord(id, line, last), last };
}
