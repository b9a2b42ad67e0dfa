/**
 * @module
 * Retry policy: how many attempts a job gets and how long to wait between them. Lives in lib,
 * not storage, so every backend retries the same way.
 */

import type { BackoffSpec } from "../events.ts";
import type { BackoffFunction } from "../job.ts";
import { systemClock } from "../clock.ts";
import { MAX_DELAY_MS } from "../options.ts";

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
 * `error`, at most {@link MAX_DELAY_MS} (10 years; exponential curves are capped there). A
 * backoff function that throws or returns anything but a number from 0 to `MAX_DELAY_MS` falls
 * back to Hangfire's curve, so a buggy policy never stalls a job or writes a time no `Date` holds.
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
    return typeof ms === "number" && ms >= 0 && ms <= MAX_DELAY_MS
      ? ms
      : Math.min(hangfireDelay(failedAttempt, random), MAX_DELAY_MS);
  }
  if (backoff === undefined || backoff === "exponential") {
    return Math.min(hangfireDelay(failedAttempt, random), MAX_DELAY_MS);
  }
  if (backoff === "fixed") return FIXED_DELAY_MS;
  const delay = backoff.type === "fixed"
    ? backoff.delayMs
    : backoff.delayMs * 2 ** (failedAttempt - 1);
  return Number.isFinite(delay) && delay >= 0 ? Math.min(delay, MAX_DELAY_MS) : FIXED_DELAY_MS;
}
