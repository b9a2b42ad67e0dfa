/**
 * @module
 * Retry policy: how many attempts a job gets and how long to wait between them. Lives in lib,
 * not storage, so every backend retries the same way.
 */

import type { BackoffSpec } from "../events.ts";
import type { BackoffFunction } from "../job.ts";
import { systemClock } from "../clock.ts";

/** Delay of `"fixed"` without an explicit `delayMs`. */
export const FIXED_DELAY_MS = 60_000;

/**
 * Hangfire's curve: `(n-1)^4 + 15 + rand(30)·n` seconds before retry `n` (n = 1 after the
 * first failure): ~15–45 s, then ~16–75 s, ~31–105 s, ... ~1.8 h before the 10th attempt.
 */
export function hangfireDelay(failedAttempt: number, random: () => number): number {
  const n = failedAttempt;
  return Math.round(((n - 1) ** 4 + 15 + Math.floor(random() * 30) * n) * 1000);
}

/**
 * Milliseconds to wait before retrying after attempt `failedAttempt` (1-based) failed with
 * `error`. A backoff function that returns something other than a finite number ≥ 0 falls back
 * to Hangfire's curve, so a buggy policy never stalls a job.
 */
export function retryDelay(
  backoff: BackoffSpec | BackoffFunction | undefined,
  failedAttempt: number,
  error: unknown,
  random: () => number = systemClock.random,
): number {
  if (typeof backoff === "function") {
    let ms: unknown;
    try {
      ms = backoff(failedAttempt, error);
    } catch {
      ms = undefined;
    }
    return typeof ms === "number" && Number.isFinite(ms) && ms >= 0
      ? ms
      : hangfireDelay(failedAttempt, random);
  }
  if (backoff === undefined || backoff === "exponential") {
    return hangfireDelay(failedAttempt, random);
  }
  if (backoff === "fixed") return FIXED_DELAY_MS;
  return backoff.type === "fixed" ? backoff.delayMs : backoff.delayMs * 2 ** (failedAttempt - 1);
}
