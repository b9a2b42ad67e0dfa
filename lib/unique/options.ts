/**
 * @module
 * Reading a job's `unique` option (on an enqueue, or as a `defineJob` default) into what is
 * stored in its created event, and deciding whether a stored job still holds its key.
 */

import { createHash } from "node:crypto";
import { InvalidOptionError } from "../../storage/errors.ts";
import type { StoredDebounce, StoredUnique } from "../events.ts";
import { checkKey, errorText, guard, MAX_DELAY_MS, readOptions } from "../options.ts";
import type { Json } from "../payload.ts";
import { type State, STATES } from "../states.ts";

/** Longest unique key, in characters (Deno KV keys hold at most 2 KiB). */
export const MAX_UNIQUE_KEY_LENGTH = 512;

/** States in which a job holds its unique key unless `states` says otherwise. */
export const UNIQUE_STATES: readonly State[] = ["Scheduled", "Enqueued", "Awaiting", "Processing"];

/** Computes a unique key from the job's arguments (only in `defineJob`). */
// deno-lint-ignore no-explicit-any
export type UniqueKeyFunction = (args: any) => string;

/** The `unique` option: at most one job with the key while it is pending (see the README). */
export interface UniqueOptions {
  /** The key (1–512 characters); default: the job's name and its canonical JSON arguments. */
  key?: string | UniqueKeyFunction;
  /** The job also holds the key for this many ms after it was created, whatever its state. */
  ttlMs?: number;
  /** States in which the job holds the key (default Scheduled, Enqueued, Awaiting, Processing). */
  states?: readonly State[];
  /** What a duplicate enqueue does: return the existing job's id (default), or throw. */
  onDuplicate?: "return" | "error";
}

/** The `debounce` option: one job per key, run `delayMs` after the last enqueue of the key. */
export interface DebounceOptions {
  /** The key (1–512 characters; shares the namespace of unique keys). */
  key: string | UniqueKeyFunction;
  /** The job runs this many ms after the last enqueue with the key, with its arguments. */
  delayMs: number;
  /** ...but at most this many ms after the first enqueue, however many follow. */
  maxWaitMs?: number;
}

/** A debounce option read and checked. */
export interface DebounceSpec {
  key: string | UniqueKeyFunction;
  delayMs: number;
  maxWaitMs?: number;
}

/** Reads and checks a `debounce` option at `where` (`fn` allows a key function: defineJob). */
export function readDebounce(value: unknown, where: string, fn = false): DebounceSpec {
  const read = readOptions(value, {
    call: "debounce",
    where,
    allowed: ["key", "delayMs", "maxWaitMs"],
  });
  if (value === undefined || value === null) {
    throw new InvalidOptionError(where, value, "must be an object { key, delayMs, maxWaitMs? }");
  }
  const key = typeof read.key === "function" && fn
    ? read.key as UniqueKeyFunction
    : checkUniqueKey(read.key, `${where}.key`);
  const spec: DebounceSpec = { key, delayMs: checkPositive(read.delayMs, `${where}.delayMs`) };
  if (read.maxWaitMs !== undefined) {
    spec.maxWaitMs = checkPositive(read.maxWaitMs, `${where}.maxWaitMs`);
  }
  return spec;
}

/** A unique option read and checked, before its key is computed from the arguments. */
export interface UniqueSpec {
  key?: string | UniqueKeyFunction;
  ttlMs?: number;
  states?: State[];
  onDuplicate: "return" | "error";
}

const KEYS = ["key", "ttlMs", "states", "onDuplicate"];

/** Reads and checks a `unique` option at `where` (`fn` allows a key function: defineJob). */
export function readUnique(value: unknown, where: string, fn = false): UniqueSpec {
  const read = readOptions(value, { call: "unique", where, allowed: KEYS });
  if (value === undefined || value === null) {
    throw new InvalidOptionError(where, value, "must be an object { key?, ttlMs?, states? }");
  }
  const spec: UniqueSpec = { onDuplicate: "return" };
  if (read.key !== undefined) {
    spec.key = typeof read.key === "function" && fn
      ? read.key as UniqueKeyFunction
      : checkUniqueKey(read.key, `${where}.key`);
  }
  if (read.ttlMs !== undefined) spec.ttlMs = checkPositive(read.ttlMs, `${where}.ttlMs`);
  if (read.states !== undefined) spec.states = checkStates(read.states, `${where}.states`);
  if (spec.states?.length === 0 && spec.ttlMs === undefined) {
    throw new InvalidOptionError(
      `${where}.states`,
      [],
      "may be empty only with ttlMs (the key is then held for ttlMs whatever the state)",
    );
  }
  const on = read.onDuplicate ?? "return";
  if (on !== "return" && on !== "error") {
    throw new InvalidOptionError(`${where}.onDuplicate`, on, 'must be "return" or "error"');
  }
  spec.onDuplicate = on;
  return spec;
}

/** Throws {@link InvalidOptionError} unless `value` is a key: 1–512 characters, no control ones. */
export function checkUniqueKey(value: unknown, where: string): string {
  return checkKey(value, where, MAX_UNIQUE_KEY_LENGTH);
}

/** A positive integer number of ms, at most 10 years. */
export function checkPositive(value: unknown, where: string): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_DELAY_MS) {
    throw new InvalidOptionError(
      where,
      value,
      `must be a positive integer number of ms, at most ${MAX_DELAY_MS} (10 years)`,
    );
  }
  return value as number;
}

function checkStates(value: unknown, where: string): State[] {
  const list = guard(where, () => Array.isArray(value) ? [...value] : null);
  if (!list) throw new InvalidOptionError(where, value, `must be an array of states`);
  for (const state of list) {
    if (!STATES.includes(state)) {
      throw new InvalidOptionError(where, state, `is not a state; states are ${STATES.join(", ")}`);
    }
  }
  // Stored in the table's order, each once, so equal sets store equal.
  return STATES.filter((state) => list.includes(state));
}

/**
 * What a job stores for `spec`: its key (given, computed by the definition's function, or the
 * job's name and canonical arguments), and its states and ttl when not the defaults.
 */
export function storedUnique(
  spec: UniqueSpec,
  job: { name: string; args: Json; where: string },
): StoredUnique {
  const key = keyOf(spec.key, job, "unique");
  const stored: StoredUnique = { key };
  if (spec.ttlMs !== undefined) stored.ttlMs = spec.ttlMs;
  const states = spec.states;
  if (states && states.join() !== UNIQUE_STATES.join()) stored.states = states;
  return stored;
}

/** What a debounced job stores: its key (held while Scheduled) and its timing. */
export function storedDebounce(
  spec: DebounceSpec,
  job: { name: string; args: Json; where: string },
): { unique: StoredUnique; debounce: StoredDebounce } {
  const debounce: StoredDebounce = { delayMs: spec.delayMs };
  if (spec.maxWaitMs !== undefined) debounce.maxWaitMs = spec.maxWaitMs;
  return { unique: { key: keyOf(spec.key, job, "debounce"), states: ["Scheduled"] }, debounce };
}

/** A key as given, made by the definition's function, or the default key. */
function keyOf(
  given: string | UniqueKeyFunction | undefined,
  job: { name: string; args: Json },
  what: string,
): string {
  if (typeof given !== "function") return given ?? defaultKey(job.name, job.args);
  const path = `${what} key of job ${JSON.stringify(job.name)}`;
  let made: unknown;
  try {
    made = given(job.args);
  } catch (error) {
    throw new InvalidOptionError(path, "(threw)", `its function threw: ${errorText(error)}`);
  }
  return checkUniqueKey(made, path);
}

/** The job's name and its arguments as canonical JSON (hashed when that would be too long). */
export function defaultKey(name: string, args: Json): string {
  const text = `${name}:${canonicalJson(args)}`;
  if (text.length <= MAX_UNIQUE_KEY_LENGTH) return text;
  return `${name}:sha256:${createHash("sha256").update(text).digest("hex")}`;
}

/** JSON with every object's keys sorted, so that equal values give equal text. */
export function canonicalJson(value: Json): string {
  // Most arguments already list their keys in order: then JSON.stringify's text is the
  // canonical one, made natively in one call (this runs for every unique enqueue).
  return keysInOrder(value) ? JSON.stringify(value) : sortedJson(value);
}

/** True when every object in `value` lists its keys in sorted order (arrays walked too). */
function keysInOrder(value: Json): boolean {
  if (typeof value !== "object" || value === null) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (!keysInOrder(item)) return false;
    return true;
  }
  let previous: string | undefined;
  for (const key of Object.keys(value)) {
    if (previous !== undefined && !(previous < key)) return false;
    if (!keysInOrder(value[key])) return false;
    previous = key;
  }
  return true;
}

/** {@link canonicalJson} made by sorting each object's keys. */
function sortedJson(value: Json): string {
  if (typeof value !== "object" || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${sortedJson(value[k])}`).join(",")}}`;
}

/** A unique or debounced job's key and how a duplicate enqueue is handled. */
export interface FlowSpec {
  /** The key it claims. */
  key: string;
  /** A duplicate throws `JobExistsError` instead of returning the holder's id (unique only). */
  error: boolean;
  /** Debounced: its timing. */
  debounce?: StoredDebounce;
}

/**
 * Settles an enqueue's `unique` or `debounce` (its own options, else its definition's): what
 * its created event stores, and its {@link FlowSpec}; undefined for a plain job. Refuses both
 * together, either with a custom id, and on calls that cannot take them (a definition's default
 * is then left out: a batch member or continuation is its own job).
 */
export function flowOf(
  own: { unique?: unknown; debounce?: unknown },
  defaults: { unique?: unknown; debounce?: unknown },
  job: { name: string; args: Json; where: string; call: string; custom: boolean; fixed: boolean },
): { unique: StoredUnique; debounce?: StoredDebounce; spec: FlowSpec } | undefined {
  const given = own.unique !== undefined || own.debounce !== undefined;
  const { unique, debounce } = given ? own : defaults;
  if (unique === undefined && debounce === undefined) return undefined;
  const option = debounce === undefined ? "unique" : "debounce";
  const where = `${job.where}.${option}`;
  const value = unique ?? debounce;
  const conflict = unique !== undefined && debounce !== undefined
    ? "cannot be combined with unique (a debounced job is unique by its key already)"
    : job.custom
    ? "cannot be combined with a custom id (an id is a uniqueness key of its own)"
    : option === "debounce" && job.call === "schedule"
    ? "cannot be scheduled: a debounced job's due time comes from its delayMs"
    : undefined;
  const caller = job.fixed || job.call === "continueWith";
  if (caller && !given) return undefined;
  if (caller) {
    const reason = `${job.call} cannot take it: a batch member, continuation or recurring ` +
      "occurrence is its own job";
    throw new InvalidOptionError(where, value, reason);
  }
  if (conflict) throw new InvalidOptionError(where, value, conflict);
  if (debounce !== undefined) {
    const stored = storedDebounce(debounce as DebounceSpec, job);
    return { ...stored, spec: { key: stored.unique.key, error: false, debounce: stored.debounce } };
  }
  const spec = unique as UniqueSpec;
  const stored = storedUnique(spec, job);
  return { unique: stored, spec: { key: stored.key, error: spec.onDuplicate === "error" } };
}
