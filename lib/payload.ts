/**
 * @module
 * Checks that job arguments, results and progress values are plain JSON, and measures them.
 * A value that would not survive a round trip through JSON unchanged is refused with its path.
 */

import {
  ArgsNotSerializableError,
  PayloadTooLargeError,
  TaskFlowError,
} from "../storage/errors.ts";
import { errorText } from "./options.ts";

/** A plain JSON value, as stored for job arguments and results. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Deepest nesting accepted; deeper values are almost always a mistake and slow every reader. */
export const MAX_DEPTH = 64;

/** Longest array accepted (any longer one is over every backend's size limit anyway). */
const MAX_ITEMS = 1_000_000;

const encoder = new TextEncoder();

/**
 * Returns a plain-JSON copy of `value`, or throws {@link ArgsNotSerializableError} naming the
 * first offending path (e.g. `args.user.at`). Object properties whose value is `undefined` are
 * left out, as `JSON.stringify` does; `undefined` anywhere else is refused.
 */
export function toJson(value: unknown, path = "args"): Json {
  return copy(value, path, 0, new Set());
}

/** Size in bytes of `value` serialized as UTF-8 JSON. */
export function jsonBytes(value: Json): number {
  return encoder.encode(JSON.stringify(value)).length;
}

/** Throws {@link PayloadTooLargeError} when `value` is over `limit` bytes as JSON. */
export function checkSize(what: string, value: Json, limit: number): void {
  const text = JSON.stringify(value);
  // No UTF-16 unit takes more than 3 bytes in UTF-8: most values need no encoding to pass.
  if (text.length * 3 <= limit) return;
  const size = encoder.encode(text).length;
  if (size > limit) throw new PayloadTooLargeError(what, size, limit);
}

function copy(value: unknown, path: string, depth: number, seen: Set<object>): Json {
  switch (typeof value) {
    case "string":
      checkUtf16(value, path);
      return value;
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) {
        throw new ArgsNotSerializableError(path, `${value} is not a finite number`);
      }
      return value;
    case "undefined":
      throw new ArgsNotSerializableError(path, "undefined is not JSON (use null)");
    case "bigint":
      throw new ArgsNotSerializableError(path, "BigInt is not JSON (pass it as a string)");
    case "symbol":
      throw new ArgsNotSerializableError(path, "a symbol is not JSON");
    case "function":
      throw new ArgsNotSerializableError(path, "a function is not JSON");
  }
  if (value === null) return null;
  const object = value as object;
  if (depth >= MAX_DEPTH) {
    throw new ArgsNotSerializableError(path, `nested deeper than ${MAX_DEPTH} levels`);
  }
  if (seen.has(object)) throw new ArgsNotSerializableError(path, "a cycle refers back to itself");
  seen.add(object);
  try {
    return copyObject(object, path, depth, seen);
  } catch (error) {
    // A getter or a Proxy trap that throws: the value cannot be read, so it is not plain JSON.
    if (error instanceof TaskFlowError) throw error;
    throw new ArgsNotSerializableError(path, `reading it threw: ${errorText(error)}`);
  } finally {
    seen.delete(object);
  }
}

function copyObject(object: object, path: string, depth: number, seen: Set<object>): Json {
  if (Array.isArray(object)) {
    // A sparse array's length alone could make the copy run for minutes.
    if (object.length > MAX_ITEMS) {
      throw new ArgsNotSerializableError(path, `has over ${MAX_ITEMS} items`);
    }
    return object.map((item, i) => copy(item, `${path}[${i}]`, depth + 1, seen));
  }
  const proto = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    const kind = object.constructor?.name ?? "object";
    const hint = object instanceof Date ? " (pass date.toISOString() or getTime())" : "";
    throw new ArgsNotSerializableError(path, `a ${kind} instance is not plain JSON${hint}`);
  }
  if (Object.getOwnPropertySymbols(object).length > 0) {
    throw new ArgsNotSerializableError(path, "symbol keys are not JSON");
  }
  const out: { [key: string]: Json } = {};
  for (const [key, item] of Object.entries(object)) {
    const itemPath = /^[A-Za-z_$][\w$]*$/.test(key)
      ? `${path}.${key}`
      : `${path}[${JSON.stringify(key)}]`;
    checkUtf16(key, `${itemPath} (key)`);
    if (item === undefined) continue;
    out[key] = copy(item, itemPath, depth + 1, seen);
  }
  return out;
}

function checkUtf16(text: string, path: string): void {
  if (!text.isWellFormed()) {
    throw new ArgsNotSerializableError(path, "the string has a lone UTF-16 surrogate");
  }
}
