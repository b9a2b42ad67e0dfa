/**
 * @module
 * Job expiry: the `expiresInMs` / `expiresAt` options read into one absolute time stored with
 * the job, and the test every path that would start a job makes first (a job not started by
 * then never runs; it goes to Deleted with reason "expired").
 */

import { InvalidOptionError } from "../storage/errors.ts";
import type { StoredOptions } from "./events.ts";
import { checkDuration, checkTime, MAX_DELAY_MS } from "./options.ts";

/** The reason of the Deleted state an expired job ends in. */
export const EXPIRED_REASON = "expired";

/** Checks an `expiresInMs` (of an enqueue or a definition's defaults): 1 ms to 10 years. */
export function checkExpiresIn(value: unknown, option: string): number {
  return checkDuration(value, option, { min: 1, max: MAX_DELAY_MS, what: "10 years" });
}

/**
 * The time (ms since epoch) a job enqueued at `now` expires, from its options (`expiresAt`, or
 * `expiresInMs` after `now`) or else its definition's `expiresInMs`; undefined if it never does.
 */
export function expiryOf(
  options: { expiresInMs?: unknown; expiresAt?: unknown },
  defaults: { expiresInMs?: number },
  how: { where: string; now: number },
): number | undefined {
  const { where, now } = how;
  if (options.expiresAt !== undefined) {
    if (options.expiresInMs !== undefined) {
      throw new InvalidOptionError(
        `${where}.expiresAt`,
        options.expiresAt,
        "give expiresAt or expiresInMs, not both",
      );
    }
    const at = checkTime(options.expiresAt, `${where}.expiresAt`, now);
    if (at <= now) {
      throw new InvalidOptionError(
        `${where}.expiresAt`,
        options.expiresAt,
        "lies in the past: the job could never run",
      );
    }
    return at;
  }
  const inMs = options.expiresInMs ?? defaults.expiresInMs;
  if (inMs === undefined) return undefined;
  return now + checkExpiresIn(inMs, `${where}.expiresInMs`);
}

/** Whether a job with `options` may no longer start at `now`. */
export function isExpired(options: StoredOptions, now: number): boolean {
  return options.expiresAt !== undefined && options.expiresAt <= now;
}
