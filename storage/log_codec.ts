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

/**
 * The line standing for the created event the record implies (see {@link impliedCreated}). In
 * a log kept whole (not collapsed) it prefixes a created line written out in full, to say the
 * record implies it, so that collapsing the log needs no comparison to replace it.
 */
export const IMPLIED = "=";
/** Record field listing the fields of the last event's data that the record does not have. */
const ABSENT = "-";

type Fields = Record<string, unknown>;

/** Event `event`, the `index`-th of its log (from 0), as one line. */
export function encodeEvent(event: JobEvent, index: number): string {
  const fields = event as unknown as Fields;
  const state = fields.state, data = fields.data;
  // Fields are copied one by one (no rest spread): this runs for every event appended.
  const isState = event.type === "state" && typeof state === "string" &&
    !state.startsWith(".") && data !== 0;
  let rest: Fields | undefined;
  for (const key in fields) {
    const value = fields[key];
    if (
      value === undefined || key === "type" || key === "at" ||
      (key === "seq" && value === index + 1) || (isState && (key === "state" || key === "data"))
    ) continue;
    (rest ??= {})[key] = value;
  }
  if (!isState) {
    return JSON.stringify(rest ? [event.at, `.${event.type}`, rest] : [event.at, `.${event.type}`]);
  }
  if (rest) return JSON.stringify([event.at, state, data === undefined ? 0 : data, rest]);
  return JSON.stringify(data === undefined ? [event.at, state] : [event.at, state, data]);
}

/** The `index`-th event of job `id`'s log from its line; throws when it is not one. */
export function decodeEvent(id: string, line: string, index: number): JobEvent {
  let value: unknown;
  try {
    // A created line marked as the one its record implies (see {@link IMPLIED}).
    value = JSON.parse(line.startsWith(IMPLIED) ? line.slice(1) : line);
  } catch {
    throw new CorruptRecordError(id, `event ${index + 1} of the stored log is not JSON`);
  }
  if (!Array.isArray(value) || typeof value[1] !== "string") {
    throw new CorruptRecordError(id, `event ${index + 1} of the stored log is not an event`);
  }
  const head = value[1] as string;
  let event: Fields, rest: unknown;
  if (head.startsWith(".")) {
    event = { type: head.slice(1), at: value[0] };
    rest = value[2];
  } else {
    event = { type: "state", at: value[0], state: head };
    if (value[2] !== undefined && value[2] !== 0) event.data = value[2];
    rest = value[3];
  }
  if (rest !== null && typeof rest === "object") {
    for (const key in rest as Fields) event[key] = (rest as Fields)[key];
  }
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
  if (record.traceparent !== undefined) event.traceparent = record.traceparent;
  if (record.tracestate !== undefined) event.tracestate = record.tracestate;
  event.seq = 1;
  return event as unknown as JobEvent;
}

/** Fields of a created event that {@link impliedCreated} makes from the record. */
const IMPLIED_FIELDS = new Set([
  "type",
  "seq",
  "at",
  "name",
  "queue",
  "args",
  "priority",
  "options",
  "parentId",
  "on",
  "batchId",
]);

/**
 * Whether `event` is the created event `record` implies, checked without encoding either: the
 * record made from it shares its args and options (same objects), so a field-by-field identity
 * check suffices; anything else (a copy, an extra field) counts as not implied.
 */
export function isImpliedCreated(event: JobEvent, record: JobRecord): boolean {
  if (event.type !== "created" || event.seq !== 1) return false;
  const fields = event as unknown as Fields;
  for (const key in fields) {
    if (fields[key] !== undefined && !IMPLIED_FIELDS.has(key)) return false;
  }
  return event.at === record.createdAt && event.name === record.name &&
    event.queue === record.queue && event.args === record.args &&
    event.priority === record.priority && event.options === record.options &&
    event.parentId === record.parentId && event.on === record.on &&
    event.batchId === record.batchId;
}

/**
 * Whether two records of one job imply the same created event (compared by identity: a record
 * projected from another shares its args and options). Only a damaged record changes it: its
 * log's created line then no longer stands for {@link IMPLIED}.
 */
export function sameImplied(a: JobRecord, b: JobRecord): boolean {
  return a.createdAt === b.createdAt && a.name === b.name && a.queue === b.queue &&
    a.args === b.args && a.priority === b.priority && a.options === b.options &&
    a.parentId === b.parentId && a.on === b.on && a.batchId === b.batchId;
}

/**
 * The record line of a collapsed job: `record` without its id, and without the fields its last
 * event `last` (a state event) restores: `state` and `stateAt` when they are that event's, and
 * each field of the event's data that the record holds with the same value. `last` is left out
 * (undefined) when it is the job's first event.
 */
export function encodeRecord(record: JobRecord, last: JobEvent | undefined): string {
  const fields = record as unknown as Fields;
  const data = last?.type === "state" ? last.data as Fields | undefined : undefined;
  const sameState = last?.type === "state" && record.state === last.state &&
    record.stateAt === last.at;
  // Copied field by field (no deletes, which would slow every later access to the object).
  const rest: Fields = {};
  for (const key in fields) {
    if (key === "id" || (sameState && (key === "state" || key === "stateAt"))) continue;
    const value = fields[key];
    if (data && value !== undefined && key in data && same(value, data[key])) continue;
    rest[key] = value;
  }
  if (data) {
    let absent: string[] | undefined;
    for (const key in data) {
      if (data[key] !== undefined && fields[key] === undefined) (absent ??= []).push(key);
    }
    if (absent) rest[ABSENT] = absent;
  }
  return JSON.stringify(rest);
}

/** Whether two JSON values are the same (numbers and strings compared directly). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  return typeof a === "object" && typeof b === "object" && JSON.stringify(a) === JSON.stringify(b);
}

/** The record of job `id` from its record line and its last event (see {@link encodeRecord}). */
export function decodeRecord(id: string, line: string, last: JobEvent | undefined): JobRecord {
  let record: Fields;
  try {
    // The id goes in first, as a field of the text: the record keeps its usual field order.
    record = JSON.parse(
      line.length > 2 && line[0] === "{" ? `{"id":${JSON.stringify(id)},${line.slice(1)}` : line,
    );
  } catch {
    throw new CorruptRecordError(id, "the stored record is not JSON");
  }
  if (typeof record !== "object" || record === null || Array.isArray(record)) {
    throw new CorruptRecordError(id, "the stored record is not a job record");
  }
  if (record.id !== id) record.id = id;
  if (last?.type === "state") {
    if (record.state === undefined) {
      record.state = last.state;
      record.stateAt = last.at;
    }
    const data = last.data as Fields | undefined;
    const absent = record[ABSENT] as string[] | undefined;
    if (absent !== undefined) delete record[ABSENT];
    for (const key in data) {
      if (record[key] === undefined && data[key] !== undefined && !absent?.includes(key)) {
        record[key] = data[key];
      }
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
  if (end < 0) return decodeRecord(id, text, undefined);
  const from = text.lastIndexOf("\n");
  // Only the last event restores fields, when it is a state event and not the first event.
  const lastLine = text.slice(from + 1);
  if (from === end || lastLine === IMPLIED) return decodeRecord(id, text.slice(0, end), undefined);
  let value: unknown[];
  try {
    value = JSON.parse(lastLine);
  } catch {
    throw new CorruptRecordError(id, "the last event of the stored log is not JSON");
  }
  const head = Array.isArray(value) ? value[1] : undefined;
  // Parsed in place: the event itself is not needed, only its state, time and data.
  const last = typeof head === "string" && !head.startsWith(".")
    ? { type: "state", at: value[0], state: head, data: value[2] || undefined } as JobEvent
    : undefined;
  return decodeRecord(id, text.slice(0, end), last);
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

/**
 * The log of a collapsed job (`text`, as {@link encodeCollapsed} made it, of `record`) as far
 * as its history needs it: each event's type and time, a state event's state and its data's
 * `durationMs`. Lines are read in place; one that may hold a duration, or that the shortcut
 * cannot read, is decoded whole.
 */
export function decodeHistoryEvents(record: JobRecord, text: string): JobEvent[] {
  const events: JobEvent[] = [];
  for (let from = text.indexOf("\n"), index = 0; from >= 0; index++) {
    const end = text.indexOf("\n", from + 1);
    const line = end < 0 ? text.slice(from + 1) : text.slice(from + 1, end);
    events.push(historyEvent(record, line, index));
    from = end;
  }
  return events;
}

/** One event of {@link decodeHistoryEvents}. */
function historyEvent(record: JobRecord, line: string, index: number): JobEvent {
  if (index === 0 && line === IMPLIED) {
    return { type: "created", at: record.createdAt, seq: 1 } as unknown as JobEvent;
  }
  // `[at,"head"...`: heads are event types and state names, JSON strings without escapes.
  const comma = line.indexOf(",");
  const close = line.indexOf('"', comma + 2);
  const at = Number(line.slice(1, comma));
  const head = line.slice(comma + 2, close);
  if (
    line[0] !== "[" || comma < 2 || line[comma + 1] !== '"' || close < 0 ||
    !Number.isFinite(at) || head.includes("\\") || head === ".state"
  ) return decodeEvent(record.id, line, index);
  const event: Fields = head[0] === "."
    ? { type: head.slice(1), at, seq: index + 1 }
    : { type: "state", at, state: head, seq: index + 1 };
  // Only a state event's data, its third item, holds a duration.
  if (head[0] !== "." && line.includes('"durationMs"')) {
    let value: unknown[];
    try {
      value = JSON.parse(line);
    } catch {
      throw new CorruptRecordError(record.id, `event ${index + 1} of the stored log is not JSON`);
    }
    if (value[2] !== 0) event.data = value[2];
  }
  return event as unknown as JobEvent;
}
