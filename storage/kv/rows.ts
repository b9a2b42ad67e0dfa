/**
 * @module
 * A job's row on Deno KV: its record and the start of its event log in one value, so that a
 * finished job takes one row besides its index entries (SQLite's cost per row, and the key it
 * repeats in its expiry index, weigh as much as the bytes). The log is packed by position
 * (sequence numbers by place, times as offsets, states and data fields by number), and the
 * record leaves out what the log already holds: its created event's fields and the data of
 * the row's last event. The log is the truth: a record that disagrees is stored in full.
 * Events past `ROW_CHARS` go to rows of their own (`ev/<id>/<seq>`), and so do all after them.
 */

import type { JobEvent, StateData } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import type { State } from "../../lib/states.ts";
import type { Key } from "./projections.ts";

/** A stored row: packed record (null: none, as rebuild leaves a broken log), packed log, spilled. */
export type Row = [record: unknown[] | null, log: unknown[], spilled?: 1];

/** A job's row as read: the record it holds is null when absent or unreadable. */
export interface RowEntry {
  key: Key;
  versionstamp: string | null;
  row: Row | null;
  record: JobRecord | null;
}

/**
 * Characters (as JSON) a row grows to before later events go to rows of their own: each commit
 * rewrites the row, so a chatty job's log must not make every write large.
 */
export const ROW_CHARS = 8 * 1024;

// Every state, as lib/states.ts lists them; a state not here is stored by name.
const STATES: readonly State[] = [
  "Scheduled",
  "Enqueued",
  "Awaiting",
  "Processing",
  "Succeeded",
  "Failed",
  "Deleted",
];
const TYPES = [
  "created",
  "state",
  "progress",
  "log",
  "continuation",
  "deduplicated",
  "debounced",
  "dependent",
  "dependency",
  "unstaged",
] as const;
type Type = typeof TYPES[number];
/** The fields of each event type after type, seq and at, in their stored order. */
const SHAPES: Record<Type, readonly string[]> = {
  created: ["name", "queue", "args", "priority", "options", "batchId", "parentId", "on"],
  state: ["state", "data", "reason"],
  progress: ["value"],
  log: ["message"],
  continuation: ["childId", "on"],
  deduplicated: [],
  debounced: ["args", "runAt"],
  dependent: ["childId"],
  dependency: ["id", "state"],
  unstaged: [],
};
const DATA = [
  "serverId",
  "leaseUntil",
  "result",
  "durationMs",
  "error",
  "runAt",
  "retryOf",
  "resetAttempts",
  "snoozed",
] as const;
// Record fields, the usual ones first (their presence bits stay small).
const FIELDS = [
  "state",
  "stateAt",
  "version",
  "attempt",
  "continuations",
  "serverId",
  "startedAt",
  "durationMs",
  "result",
  "name",
  "queue",
  "args",
  "priority",
  "options",
  "createdAt",
  "error",
  "reason",
  "runAt",
  "retryOf",
  "progress",
  "parentId",
  "on",
  "batchId",
  "keep",
] as const;

type Loose = Record<string, unknown>;

/** Whether `value` has the shape of a stored row. */
export function isRow(value: unknown): value is Row {
  return Array.isArray(value) && Array.isArray(value[1]) &&
    (value[0] === null || Array.isArray(value[0]));
}

/** The record a stored value holds (the value itself when it is not a row, for checkedRecord). */
export function storedRecord(id: string, value: unknown): unknown {
  if (!isRow(value)) return value;
  const [packed, log] = value;
  if (packed === null) return null;
  return unpackRecord(id, packed, first(log), last(log));
}

/** The events a row holds (the rest, when spilled, are in `ev` rows). */
export function rowEvents(row: Row): JobEvent[] {
  const log = row[1];
  const base = baseOf(log);
  return log.map((packed, i) => unpackEvent(packed, i, base));
}

/** Sequence number of a row's last event (0 for none): spilled events follow it. */
export function lastSeq(row: Row): number {
  return last(row[1])?.seq ?? 0;
}

/** The entry of a read row; an unreadable one holds no record (conflicts with any version). */
export function rowEntry(entry: Deno.KvEntryMaybe<unknown>): RowEntry {
  const { key, versionstamp, value } = entry;
  const id = key[key.length - 1] as string;
  if (!isRow(value)) return { key, versionstamp, row: null, record: null };
  try {
    const record = storedRecord(id, value) as JobRecord | null;
    return { key, versionstamp, row: value, record };
  } catch {
    return { key, versionstamp, row: null, record: null };
  }
}

/**
 * The row after a commit: `events` join the log while the row stays within ROW_CHARS (and the
 * job never spilled); otherwise they are returned to be written as rows of their own.
 */
export function nextRow(
  old: Row | null,
  record: JobRecord,
  events: readonly JobEvent[],
): { row: Row; own: readonly JobEvent[]; chars: number } {
  const log = old?.[1] ?? [];
  if (old?.[2] !== 1) {
    const base = log.length ? baseOf(log)! : events[0].at;
    const longer = [...log, ...events.map((e, k) => packEvent(e, log.length + k, base))];
    const row: Row = [packRecord(record, first(longer), last(longer)), longer];
    const chars = JSON.stringify(row).length;
    if (chars <= ROW_CHARS) return { row, own: [], chars };
  }
  const row: Row = [packRecord(record, first(log), last(log)), log, 1];
  return { row, own: events, chars: JSON.stringify(row).length };
}

/** `row` holding `record` instead of its own (null: no record). */
export function withRecord(row: Row, record: JobRecord | null): Row {
  const [, log, spilled] = row;
  const packed = record ? packRecord(record, first(log), last(log)) : null;
  return spilled ? [packed, log, spilled] : [packed, log];
}

function first(log: unknown[]): JobEvent | undefined {
  return log.length ? unpackEvent(log[0], 0, undefined) : undefined;
}

function last(log: unknown[]): JobEvent | undefined {
  return log.length ? unpackEvent(log[log.length - 1], log.length - 1, baseOf(log)) : undefined;
}

/** Time of a log's first event: the others are stored as offsets from it. */
function baseOf(log: unknown[]): number | undefined {
  return log.length ? unpackEvent(log[0], 0, undefined).at : undefined;
}

/** An event at place `i` of a log: positional when its shape allows, else stored as it is. */
function packEvent(event: JobEvent, i: number, base: number): unknown {
  const e = event as unknown as Loose;
  const type = TYPES.indexOf(event.type);
  if (type < 0 || event.seq !== i + 1 || typeof event.at !== "number" || isNaN(base)) {
    return event;
  }
  const shape = SHAPES[event.type];
  for (const key in e) {
    if (key !== "type" && key !== "seq" && key !== "at" && !shape.includes(key)) return event;
  }
  const packed: unknown[] = [type, i === 0 ? event.at : event.at - base];
  let end = packed.length;
  for (const field of shape) {
    if (!(field in e)) {
      packed.push(null);
      continue;
    }
    let value = e[field];
    if (value === null || value === undefined) return event;
    if (event.type === "state" && field === "state") value = code(value as State);
    if (field === "data") {
      value = packFields(value as Loose, DATA, false);
      if (value === undefined) return event;
    }
    packed.push(value);
    end = packed.length;
  }
  packed.length = end;
  return packed;
}

function unpackEvent(packed: unknown, i: number, base: number | undefined): JobEvent {
  if (!Array.isArray(packed)) return packed as JobEvent;
  const type = TYPES[packed[0] as number];
  const at = (packed[1] as number) + (i === 0 ? 0 : base!);
  const event: Loose = { type, seq: i + 1, at };
  SHAPES[type].forEach((field, k) => {
    let value = packed[k + 2];
    if (value === null || value === undefined) return;
    if (field === "state") value = typeof value === "number" ? STATES[value] : value;
    if (field === "data") value = unpackFields(value as unknown[], DATA);
    event[field] = value;
  });
  return event as unknown as JobEvent;
}

/** A state by number when it is one of STATES. */
function code(state: State): number | string {
  const n = STATES.indexOf(state);
  return n < 0 ? state : n;
}

/**
 * Fields of `object` as [presence bits, ...values] in the order of `fields` (a trailing object
 * holds any others when `extra`; without, such an object is not packed: undefined).
 */
function packFields(
  object: Loose,
  fields: readonly string[],
  extra: boolean,
  skip: (field: string) => boolean = () => false,
): unknown[] | undefined {
  let bits = 0;
  const values: unknown[] = [];
  fields.forEach((field, k) => {
    if (field in object && !skip(field)) {
      bits |= 1 << k;
      values.push(object[field]);
    }
  });
  const others: Loose = {};
  let hasOthers = false;
  for (const key in object) {
    if (!fields.includes(key)) {
      others[key] = object[key];
      hasOthers = true;
    }
  }
  if (hasOthers) {
    if (!extra) return undefined;
    bits |= 1 << fields.length;
    values.push(others);
  }
  return [bits, ...values];
}

function unpackFields(packed: unknown[], fields: readonly string[], into: Loose = {}): Loose {
  const bits = packed[0] as number;
  let next = 1;
  fields.forEach((field, k) => {
    if (bits & (1 << k)) into[field] = packed[next++];
  });
  if (bits & (1 << fields.length)) Object.assign(into, packed[next]);
  return into;
}

/** Where each record field may be found in the log: the created event, or the last's data. */
function inherited(field: string, created: Loose | undefined, data: Loose | undefined): unknown {
  if (created) {
    if (field === "createdAt") return created.at;
    if (field === "keep") return (created.options as Loose | undefined)?.keep;
    if (SHAPES.created.includes(field) && field in created) return created[field];
  }
  if (data && field in data && field !== "leaseUntil" && field !== "resetAttempts") {
    return data[field];
  }
  return undefined;
}

/** Record fields as [presence bits, inherited bits, ...values]; inherited ones are not stored. */
function packRecord(record: JobRecord, firstEvent?: JobEvent, lastEvent?: JobEvent): unknown[] {
  const r = { ...record } as Loose;
  delete r.id;
  if (typeof r.state === "string") r.state = code(r.state as State);
  const created = createdOf(firstEvent);
  const data = dataOf(lastEvent);
  let inheritedBits = 0;
  const skip = (field: string) => {
    const from = inherited(field, created, data);
    if (from === undefined || !same(from, r[field])) return false;
    inheritedBits |= 1 << FIELDS.indexOf(field as typeof FIELDS[number]);
    return true;
  };
  const packed = packFields(r, FIELDS, true, skip)!;
  packed.splice(1, 0, inheritedBits);
  return packed;
}

function unpackRecord(
  id: string,
  packed: unknown[],
  firstEvent?: JobEvent,
  lastEvent?: JobEvent,
): Loose {
  const record: Loose = { id };
  const inheritedBits = packed[1] as number;
  const created = createdOf(firstEvent), data = dataOf(lastEvent);
  unpackFields([packed[0], ...packed.slice(2)], FIELDS, record);
  FIELDS.forEach((field, k) => {
    if (inheritedBits & (1 << k)) record[field] = inherited(field, created, data);
  });
  if (typeof record.state === "number") record.state = STATES[record.state];
  return record;
}

function createdOf(event?: JobEvent): Loose | undefined {
  return event?.type === "created" && event.seq === 1 ? event as unknown as Loose : undefined;
}

function dataOf(event?: JobEvent): Loose | undefined {
  return event?.type === "state" ? event.data as StateData as Loose | undefined : undefined;
}

/** Deep equality of stored values (same keys, same values; undefined differs from absent). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && same((a as Loose)[k], (b as Loose)[k]));
}
