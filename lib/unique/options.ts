/**
 * @module
 * Reading a job's `unique` option (on an enqueue, or as a `defineJob` default) into what is
 * stored in its created event, and deciding whether a stored job still holds its key.
 */

import { createHash } from "node:crypto";
import { InvalidOptionError } from "../../storage/errors.ts";
import type { StoredUnique } from "../events.ts";
import { errorText, guard, MAX_DELAY_MS, readOptions } from "../options.ts";
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
  if (
    typeof value !== "string" || value.length === 0 || value.length > MAX_UNIQUE_KEY_LENGTH ||
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f]/.test(value)
  ) {
    throw new InvalidOptionError(
      where,
      value,
      `must be a string of 1 to ${MAX_UNIQUE_KEY_LENGTH} characters without control characters`,
    );
  }
  return value;
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
  let key: string;
  if (typeof spec.key === "function") {
    const path = `unique key of job ${JSON.stringify(job.name)}`;
    let made: unknown;
    try {
      made = spec.key(job.args);
    } catch (error) {
      throw new InvalidOptionError(path, "(threw)", `its function threw: ${errorText(error)}`);
    }
    key = checkUniqueKey(made, path);
  } else key = spec.key ?? defaultKey(job.name, job.args);
  const stored: StoredUnique = { key };
  if (spec.ttlMs !== undefined) stored.ttlMs = spec.ttlMs;
  const states = spec.states;
  if (states && states.join() !== UNIQUE_STATES.join()) stored.states = states;
  return stored;
}

/** The job's name and its arguments as canonical JSON (hashed when that would be too long). */
export function defaultKey(name: string, args: Json): string {
  const text = `${name}:${canonicalJson(args)}`;
  if (text.length <= MAX_UNIQUE_KEY_LENGTH) return text;
  return `${name}:sha256:${createHash("sha256").update(text).digest("hex")}`;
}

/** JSON with every object's keys sorted, so that equal values give equal text. */
export function canonicalJson(value: Json): string {
  if (typeof value !== "object" || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
}
