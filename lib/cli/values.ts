/**
 * @module
 * Values of command-line settings: whole numbers and durations, with typed errors naming the flag.
 */

import { InvalidOptionError } from "../../storage/errors.ts";
import { type Flag, flagName, type Settings } from "./flags.ts";

export { MAX_TIMER_MS } from "../options.ts";

/** A whole number setting from `min` to `max`; absent stays undefined. */
export function integer(
  settings: Settings,
  flag: Flag,
  min: number,
  max: number,
): number | undefined {
  const text = settings(flag);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptionError(flagName(flag), text, `must be a whole number, at least ${min}`);
  }
  if (value > max) throw new InvalidOptionError(flagName(flag), value, `must be at most ${max}`);
  return value;
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Longest duration accepted: 100 years (the due time must stay a valid date). */
const MAX_DURATION_MS = 100 * 365 * UNITS.d;

/** A duration such as `250ms`, `10s`, `1.5m`, `1h`, `2d` (or `0`) in ms. */
export function duration(flag: Flag, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  const ms = text.trim() === "0" ? 0 : match ? Math.round(Number(match[1]) * UNITS[match[2]]) : NaN;
  if (ms > MAX_DURATION_MS) {
    throw new InvalidOptionError(flagName(flag), text, "must be at most 100 years");
  }
  if (!Number.isSafeInteger(ms)) {
    throw new InvalidOptionError(
      flagName(flag),
      text,
      "must be a duration such as 250ms, 10s, 5m, 1h or 2d",
    );
  }
  return ms;
}
