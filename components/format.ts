/**
 * @module
 * Formatting shared by pages and islands (runs on the server and in the browser).
 */

/** "3.2 s", "4 min", "2.1 h", "3 d" for a duration in ms. */
export function duration(ms: number | undefined): string {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "–";
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1_000).toFixed(abs < 10_000 ? 1 : 0)} s`;
  if (abs < 3_600_000) return `${(ms / 60_000).toFixed(abs < 600_000 ? 1 : 0)} min`;
  if (abs < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

/** Shown for a stored time no `Date` can hold (written by an older version or by hand). */
export const INVALID_TIME = "invalid time";

/** True when `at` is a time a `Date` can hold. */
function validTime(at: unknown): at is number {
  return typeof at === "number" && Number.isFinite(at) && Math.abs(at) <= 8.64e15;
}

/** "12 s ago" / "in 3 min" relative to `now`. */
export function relative(at: number | undefined, now: number): string {
  if (at === undefined) return "–";
  if (!validTime(at)) return INVALID_TIME;
  const delta = at - now;
  return delta > 0 ? `in ${duration(delta)}` : `${duration(-delta)} ago`;
}

/** An ISO time without milliseconds, in UTC; {@link INVALID_TIME} for one no `Date` holds. */
export function iso(at: number | undefined): string {
  if (at === undefined) return "";
  if (!validTime(at)) return INVALID_TIME;
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A count with thin grouping: 12 345. */
export function count(n: number): string {
  return n.toLocaleString("en-US").replaceAll(",", " ");
}

/** `one` for a count of 1, else `many` ("run"/"runs", "retry"/"retries"). */
export function noun(n: number, one: string, many = `${one}s`): string {
  return n === 1 ? one : many;
}

/** "1 run", "2 runs", "0 runs", "1 retry", "3 retries": a count with its noun in the right number. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${count(n)} ${noun(n, one, many)}`;
}
