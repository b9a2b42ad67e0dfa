/**
 * @module
 * Cron schedules (via croner) in IANA timezones, correct across DST changes: parsing, the next
 * occurrence, and which occurrences are due by a definition's misfire policy.
 */

import { Cron } from "npm:croner@11.0.1";
import { InvalidCronError, InvalidTimezoneError } from "../storage/errors.ts";
import { safeString } from "./options.ts";

/** What to do with occurrences missed while no server ran. */
export type Misfire = "once" | "skip" | "all";

/** Most missed occurrences `misfire: "all"` runs at once. */
export const MAX_CATCH_UP = 100;
/** An occurrence later than this is "missed" for `misfire: "skip"`. */
export const MISFIRE_GRACE_MS = 30_000;

/** Throws {@link InvalidTimezoneError} unless `timezone` is an IANA zone this runtime knows. */
export function checkTimezone(timezone: unknown): string {
  if (typeof timezone !== "string" || timezone === "") {
    throw new InvalidTimezoneError(safeString(timezone));
  }
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new InvalidTimezoneError(timezone);
  }
  return timezone;
}

/** Parses `cron` (throws {@link InvalidCronError} naming the bad part). */
export function parseCron(cron: unknown, timezone = "UTC"): Cron {
  if (typeof cron !== "string") throw new InvalidCronError(safeString(cron), "must be a string");
  try {
    return new Cron(cron.trim(), { timezone, paused: true });
  } catch (error) {
    const reason = (error as Error).message.replace(/^CronPattern: /, "");
    throw new InvalidCronError(cron, reason);
  }
}

/** The first occurrence of `cron` in `timezone` strictly after `after`, or undefined. */
export function nextOccurrence(cron: string, timezone: string, after: number): number | undefined {
  return parseCron(cron, timezone).nextRun(new Date(after))?.getTime();
}

/** The deterministic job id of an occurrence, shared by every server. */
export function occurrenceId(recurringId: string, at: number): string {
  return `recurring:${recurringId}:${at}`;
}

/** The occurrences of `definition` to enqueue at `now`, by its misfire policy. */
export function dueOccurrences(
  definition: { nextRun?: number; cron: string; timezone: string; misfire: Misfire },
  now: number,
): number[] {
  const all: number[] = [];
  let at: number | undefined = definition.nextRun;
  while (at !== undefined && at <= now && all.length < MAX_CATCH_UP) {
    all.push(at);
    at = nextOccurrence(definition.cron, definition.timezone, at);
  }
  if (all.length === 0) return [];
  switch (definition.misfire) {
    case "all":
      return all;
    case "skip":
      return all.filter((occurrence) => now - occurrence <= MISFIRE_GRACE_MS).slice(-1);
    default:
      return all.slice(-1);
  }
}
