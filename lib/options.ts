/**
 * @module
 * Reading a call's options object safely, and the bounds of times and durations. Every public
 * call reads its options through {@link readOptions}: once, into a plain snapshot, refusing keys
 * the call does not take (with a "did you mean" for near misses), so a typo or an option meant
 * for another call is an error instead of being silently ignored.
 */

import { InvalidOptionError, MAX_SNOOZE_MS, TaskFlowError } from "../storage/errors.ts";
import { closest } from "./suggest.ts";

/**
 * Farthest a due time (or a delay, timeout or retry delay) may lie ahead: 10 years. Further is
 * almost always a unit mistake (µs for ms), and every time stays far inside what a `Date` holds.
 */
export const MAX_DELAY_MS: number = MAX_SNOOZE_MS;

/** Longest period a timer (`setTimeout`) can wait; worker periods must fit in one. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Which call takes an option, for the hint when it is given to another call. */
const OWNERS: Record<string, string> = {
  delayMs: "schedule(job, args, { delayMs })",
  at: "schedule(job, args, { at })",
  on: "continueWith(parentId, job, args, { on }) and batch(items, { on })",
  timezone: "recurring.upsert",
  misfire: "recurring.upsert",
  then: "batch(items, { then })",
  id: "enqueue, schedule and continueWith",
  queue: "enqueue-like calls",
  priority: "enqueue-like calls",
  attempts: "enqueue-like calls",
  backoff: "enqueue-like calls",
  timeoutMs: "enqueue-like calls",
  expiresInMs: "enqueue-like calls and defineJob",
  expiresAt: "enqueue-like calls",
  keep: "enqueue-like calls and defineJob",
  partition: "enqueue-like calls and defineJob",
  unique: "enqueue, schedule, enqueueMany and defineJob",
  debounce: "enqueue, enqueueMany and defineJob",
  retention: "createWorker({ retention })",
  isolate: "defineJob(name, handler, { isolate }) and createWorker({ isolate })",
  module: "defineJob(name, handler, { isolate, module })",
  transaction: "enqueue, schedule and enqueueMany(items, { transaction })",
};

/**
 * Copies the own options of `value` into a plain object, once (getters run once; a getter that
 * throws, a Proxy that throws, a symbol key or a key not in `allowed` is an
 * {@link InvalidOptionError}). `undefined` reads as `{}`. `call` names the call in messages,
 * `where` the path of the object (e.g. `options`, `items[3].options`).
 */
export function readOptions(
  value: unknown,
  how: { call: string; where?: string; allowed: readonly string[] },
): Record<string, unknown> {
  const { call, where = "options", allowed } = how;
  if (value === undefined) return {};
  const keys = guard(where, () => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new InvalidOptionError(where, value, `the options of ${call} must be an object`);
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new InvalidOptionError(where, value, `the options of ${call} must be a plain object`);
    }
    return Reflect.ownKeys(value);
  });
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    if (typeof key === "symbol") {
      throw new InvalidOptionError(where, key, `${call} takes no symbol keys`);
    }
    const path = `${where}.${key}`;
    const item = guard(path, () => {
      const descriptor = Reflect.getOwnPropertyDescriptor(value as object, key);
      return descriptor?.enumerable ? { value: (value as Record<string, unknown>)[key] } : null;
    });
    if (!item) continue;
    if (!allowed.includes(key)) throw unknownOption(path, key, item.value, call, allowed);
    if (item.value !== undefined) out[key] = item.value;
  }
  return out;
}

/** Runs `read`, turning anything but a TaskFlowError it throws into an error naming `path`. */
export function guard<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof TaskFlowError) throw error;
    throw new InvalidOptionError(path, "(unreadable)", `reading it threw: ${errorText(error)}`);
  }
}

function unknownOption(
  path: string,
  key: string,
  value: unknown,
  call: string,
  allowed: readonly string[],
): InvalidOptionError {
  const takes = allowed.length ? `${call} takes ${allowed.join(", ")}` : `${call} takes none`;
  if (Object.hasOwn(OWNERS, key)) {
    return new InvalidOptionError(
      path,
      value,
      `${call} has no ${key} option (it would be ignored); it belongs to ${OWNERS[key]}`,
    );
  }
  const near = closest(key, [...new Set([...allowed, ...Object.keys(OWNERS)])]);
  const hint = near === undefined
    ? ""
    : allowed.includes(near)
    ? ` (did you mean "${near}"?)`
    : ` (did you mean "${near}"? it belongs to ${OWNERS[near]})`;
  return new InvalidOptionError(path, value, `unknown option "${key}"${hint}; ${takes}`);
}

/** A delay in ms: a finite number from 0 to {@link MAX_DELAY_MS}. */
export function checkDelay(value: unknown, option: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > MAX_DELAY_MS) {
    throw new InvalidOptionError(
      option,
      value,
      `must be a finite number of ms, 0 or more, at most ${MAX_DELAY_MS} (10 years)`,
    );
  }
  return value;
}

/**
 * A duration in ms from `min` (exclusive when 0 is not allowed) to `max`; `what` says what the
 * maximum is (e.g. "10 years").
 */
export function checkDuration(
  value: unknown,
  option: string,
  bounds: { min: number; max: number; what: string },
): number {
  const { min, max, what } = bounds;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidOptionError(option, value, `must be a number of ms from ${min} to ${what}`);
  }
  return value;
}

/**
 * A point in time (a valid `Date` or ms since epoch) from 1970-01-01 to {@link MAX_DELAY_MS}
 * after `now`.
 */
export function checkTime(value: unknown, option: string, now: number): number {
  const time = guard(option, () => value instanceof Date ? value.getTime() : value);
  if (
    typeof time !== "number" || !Number.isFinite(time) || time < 0 || time > now + MAX_DELAY_MS
  ) {
    throw new InvalidOptionError(
      option,
      value,
      "must be a valid Date or ms since epoch, from 1970-01-01 to 10 years from now",
    );
  }
  return time;
}

/** Checks a stored backoff rule (a function is checked where it is given: defineJob). */
export function checkBackoff(backoff: unknown, where: string): void {
  if (backoff === "exponential" || backoff === "fixed") return;
  const rule =
    `must be "exponential", "fixed", { type: "exponential" | "fixed", delayMs: 0 to ${MAX_DELAY_MS} } or a function`;
  if (typeof backoff !== "object" || backoff === null) {
    throw new InvalidOptionError(`${where}.backoff`, backoff, rule);
  }
  const { type, delayMs } = readOptions(backoff, {
    call: "backoff",
    where: `${where}.backoff`,
    allowed: ["type", "delayMs"],
  });
  if (type !== "exponential" && type !== "fixed") {
    throw new InvalidOptionError(`${where}.backoff`, backoff, rule);
  }
  checkDelay(delayMs, `${where}.backoff.delayMs`);
}

/** The message of anything thrown, without ever throwing itself. */
export function errorText(error: unknown): string {
  try {
    return error instanceof Error ? String(error.message) : safeString(error);
  } catch {
    return safeString(undefined);
  }
}

/** `String(value)`, or a description where that throws (null-prototype objects, Proxies). */
export function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return `(an unprintable ${typeof value})`;
  }
}

/** An optional page size: an integer from 1 to 1,000. */
export function checkLimit(value: unknown, option: string): number | undefined {
  if (
    value !== undefined &&
    !(Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 1000)
  ) {
    throw new InvalidOptionError(option, value, "must be an integer from 1 to 1000");
  }
  return value as number | undefined;
}

/** An optional string option (cursor, reason) of at most `max` characters. */
export function checkText(value: unknown, option: string, max: number): string | undefined {
  if (value !== undefined && !(typeof value === "string" && value.length <= max)) {
    throw new InvalidOptionError(option, value, `must be a string of at most ${max} characters`);
  }
  return value as string | undefined;
}

/** Throws unless each of `keys` of `value` is a function (or absent, when `optional`). */
export function checkFunctions(
  value: unknown,
  keys: readonly string[],
  how: { where: string; optional?: boolean },
): void {
  for (const key of keys) {
    const fn = guard(
      how.where,
      () => typeof value === "object" && value !== null ? Reflect.get(value, key) : undefined,
    );
    if (typeof fn !== "function" && !(how.optional && fn === undefined)) {
      throw new InvalidOptionError(`${how.where}.${key}`, fn, "must be a function");
    }
  }
}

/** Throws {@link InvalidOptionError} unless `value` is 1 to `max` characters, none a control. */
export function checkKey(value: unknown, where: string, max: number): string {
  if (
    typeof value !== "string" || !value || value.length > max ||
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f]/.test(value)
  ) {
    throw new InvalidOptionError(
      where,
      value,
      `must be a string of 1 to ${max} characters without control characters`,
    );
  }
  return value;
}
