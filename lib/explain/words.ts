/**
 * @module
 * Times in words for explanations: "in 12 s", "3 min ago".
 */

/** A duration in ms as "850 ms", "12 s", "4 min", "2.5 h", "3 d". */
export function span(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${Math.round(abs)} ms`;
  if (abs < 120_000) return `${Math.round(abs / 1_000)} s`;
  if (abs < 7_200_000) return `${Math.round(abs / 60_000)} min`;
  if (abs < 172_800_000) return `${(abs / 3_600_000).toFixed(1)} h`;
  return `${Math.round(abs / 86_400_000)} d`;
}

/** "in 12 s" for a time `at` after `now`. */
export function inTime(at: number, now: number): string {
  return `in ${span(at - now)}`;
}

/** "12 s ago" for a time `at` before `now`. */
export function ago(at: number, now: number): string {
  return `${span(now - at)} ago`;
}
