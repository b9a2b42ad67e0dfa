/**
 * @module
 * The rate window: "at most `max` starts in any `perMs` window", decided from a bounded record
 * of recent starts. Pure; the limiter record carries the state.
 */

import type { RateLimit } from "./config.ts";

/**
 * Recent starts counted per slot of `slotMs` (slot index → starts, and the last start's time).
 * A sliding log over {@link SLOTS} slots instead of one timestamp per start, so the record stays
 * small at any `max`.
 */
export interface RateWindow {
  /** Width of a slot in ms (`ceil(perMs / SLOTS)`). */
  slotMs: number;
  /**
   * `[slot index, starts, last start]`, oldest first; slot `k` covers `[k * slotMs, (k + 1) *
   * slotMs)`.
   */
  slots: RateSlot[];
}

/** One slot of a {@link RateWindow}: `[index, starts, last start]`. */
export type RateSlot = [number, number, number];

/** Slots per window: the window holds at most this many (plus the current one). */
export const SLOTS = 64;

// A fixed window admits 2 × max across its boundary; a sliding log never does. Counting each
// slot until its last start leaves the window keeps it exact as an upper bound (at most max
// starts in any perMs window); a start waits at most the spread of its slot's starts (less than
// perMs / 64), nothing for a burst. Counting to the slot's end instead cost up to 1.6% of the
// rate (a slot late each window).

/** The slot width for `rate`. */
export function slotWidth(rate: RateLimit): number {
  return Math.max(1, Math.ceil(rate.perMs / SLOTS));
}

/** The time of a slot's last start. */
function lastOf(slot: RateSlot): number {
  return slot[2];
}

/** Starts still counted at `now`: a slot counts while its last start is in `(now - perMs, now]`. */
function live(window: RateWindow, rate: RateLimit, now: number): RateSlot[] {
  const from = now - rate.perMs;
  return window.slots.filter((slot) => lastOf(slot) > from);
}

/**
 * `window` re-cut to the slot width of `rate` (after the limit changed): each old slot moves
 * to the new slot of its last start, so no start is forgotten early.
 */
function recut(window: RateWindow | undefined, rate: RateLimit): RateWindow {
  const slotMs = slotWidth(rate);
  if (!window) return { slotMs, slots: [] };
  if (window.slotMs === slotMs) return window;
  return {
    slotMs,
    slots: merge(window.slots.map((slot) => [lastOf(slot), slot[1]]), slotMs),
  };
}

/** `[time, starts]` pairs counted into slots of `slotMs`, each keeping its latest time. */
function merge(starts: Iterable<readonly [number, number]>, slotMs: number): RateSlot[] {
  const slots = new Map<number, [number, number, number]>();
  for (const [at, n] of starts) {
    const k = Math.floor(at / slotMs);
    const slot = slots.get(k);
    if (slot) {
      slot[1] += n;
      slot[2] = Math.max(slot[2], at);
    } else slots.set(k, [k, n, at]);
  }
  return [...slots.values()].sort((a, b) => a[0] - b[0]);
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
  if (used >= rate.max) return { ok: false, retryInMs: retryIn(slots, rate, now) };
  const current = Math.floor(now / cut.slotMs);
  const last = slots.at(-1);
  const next: RateSlot[] = last && last[0] >= current
    ? [...slots.slice(0, -1), [last[0], last[1] + 1, Math.max(now, lastOf(last))]]
    : [...slots, [current, 1, now]];
  return { ok: true, window: { slotMs: cut.slotMs, slots: next } };
}

/** Ms from `now` until enough old starts leave the window to take one more. */
function retryIn(slots: RateSlot[], rate: RateLimit, now: number): number {
  let used = 0;
  for (const [, n] of slots) used += n;
  for (const slot of slots) {
    used -= slot[1];
    // The slot stops counting once now - perMs reaches its last start.
    if (used < rate.max) return Math.max(1, lastOf(slot) + rate.perMs - now);
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
  const all: RateWindow = { slotMs, slots: merge(times.map((at) => [at, 1] as const), slotMs) };
  return { slotMs, slots: live(all, rate, now) };
}
