/**
 * @module
 * The rate window: "at most `max` starts in any `perMs` window", decided from a bounded record
 * of recent starts. Pure; the limiter record carries the state.
 */

import type { RateLimit } from "./config.ts";

/**
 * Recent starts counted per slot of `slotMs` (slot index → starts). A sliding log over
 * {@link SLOTS} slots instead of one timestamp per start, so the record stays small at any `max`.
 */
export interface RateWindow {
  /** Width of a slot in ms (`ceil(perMs / SLOTS)`). */
  slotMs: number;
  /** `[slot index, starts]`, oldest first; slot `k` covers `[k * slotMs, (k + 1) * slotMs)`. */
  slots: [number, number][];
}

/** Slots per window: the window holds at most this many (plus the current one). */
export const SLOTS = 64;

// A fixed window admits 2 × max across its boundary; a sliding log never does. Counting each
// slot until its *last* instant leaves the window keeps it exact as an upper bound (at most
// max starts in any perMs window) and only delays a start by less than one slot (perMs / 64).

/** The slot width for `rate`. */
export function slotWidth(rate: RateLimit): number {
  return Math.max(1, Math.ceil(rate.perMs / SLOTS));
}

/** Starts still counted at `now`: a slot counts while any instant of it is in `(now - perMs, now]`. */
function live(window: RateWindow, rate: RateLimit, now: number): [number, number][] {
  const from = now - rate.perMs;
  return window.slots.filter(([k]) => (k + 1) * window.slotMs - 1 > from);
}

/**
 * `window` re-cut to the slot width of `rate` (after the limit changed): each old slot moves
 * to the new slot of its last instant, so no start is forgotten early.
 */
function recut(window: RateWindow | undefined, rate: RateLimit): RateWindow {
  const slotMs = slotWidth(rate);
  if (!window) return { slotMs, slots: [] };
  if (window.slotMs === slotMs) return window;
  const counts = new Map<number, number>();
  for (const [k, n] of window.slots) {
    const slot = Math.floor(((k + 1) * window.slotMs - 1) / slotMs);
    counts.set(slot, (counts.get(slot) ?? 0) + n);
  }
  return { slotMs, slots: [...counts].sort((a, b) => a[0] - b[0]) };
}

/** What the window says about one more start at `now`. */
export type RateVerdict =
  | { ok: true; window: RateWindow }
  | { ok: false; retryInMs: number };

/**
 * Admits one start at `now` when fewer than `rate.max` are counted; the window returned
 * records it (and drops slots that left the window). Refused: `retryInMs` until the oldest
 * counted starts leave the window and a slot frees.
 */
export function takeSlot(
  window: RateWindow | undefined,
  rate: RateLimit,
  now: number,
): RateVerdict {
  const cut = recut(window, rate);
  const slots = live(cut, rate, now);
  let used = 0;
  for (const [, n] of slots) used += n;
  if (used >= rate.max) return { ok: false, retryInMs: retryIn(cut.slotMs, slots, rate, now) };
  const current = Math.floor(now / cut.slotMs);
  const last = slots.at(-1);
  const next: [number, number][] = last && last[0] >= current
    ? [...slots.slice(0, -1), [last[0], last[1] + 1]]
    : [...slots, [current, 1]];
  return { ok: true, window: { slotMs: cut.slotMs, slots: next } };
}

/** Ms from `now` until enough old starts leave the window to take one more. */
function retryIn(
  slotMs: number,
  slots: [number, number][],
  rate: RateLimit,
  now: number,
): number {
  let used = 0;
  for (const [, n] of slots) used += n;
  for (const [k, n] of slots) {
    used -= n;
    // The slot stops counting once now - perMs reaches its last instant.
    if (used < rate.max) return Math.max(1, (k + 1) * slotMs - 1 + rate.perMs - now);
  }
  return 1;
}

/** Starts counted at `now` (for the Queues page and `/metrics`). */
export function startsInWindow(
  window: RateWindow | undefined,
  rate: RateLimit,
  now: number,
): number {
  let used = 0;
  for (const [, n] of live(recut(window, rate), rate, now)) used += n;
  return used;
}

/** `window` with starts at `times` added (rebuild), dropping what already left the window. */
export function windowOf(times: readonly number[], rate: RateLimit, now: number): RateWindow {
  const slotMs = slotWidth(rate);
  const counts = new Map<number, number>();
  for (const at of times) {
    const k = Math.floor(at / slotMs);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const all: RateWindow = { slotMs, slots: [...counts].sort((a, b) => a[0] - b[0]) };
  return { slotMs, slots: live(all, rate, now) };
}
