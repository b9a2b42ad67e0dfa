/**
 * @module
 * The pruned base on Redis: what removed jobs' logs added to the all-time totals, durations,
 * time buckets and batch counts (rebuild starts from it), summed straight from each job's
 * collapsed text. It counts what `historyOf` counts for the whole log, but reads the lines in
 * place and keeps plain sums: decoding every pruned job's log into event objects was half of a
 * pruner's CPU (measured in bench/RESULTS.md).
 */

import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import type { State } from "../../lib/states.ts";
import { durationBucket, endKind, groupOf } from "../effects.ts";
import { decodeEvent, IMPLIED } from "../log_codec.ts";
import { type Resolution, RESOLUTIONS } from "../storage.ts";
import { DURATION_FIELDS } from "./append_call.ts";
import type { Keys } from "./keys.ts";
import { type Increments, PrunedStats } from "./pruned_stats.ts";

export type { Increments };

const RESOLUTION_NAMES = Object.keys(RESOLUTIONS) as Resolution[];
/** A bucket's two counts (deleted jobs are not counted in buckets). */
type BucketCounts = { succeeded: number; failed: number };
/** States matched in place, the usual first (any other head is read the slower way). */
const HEADS: readonly State[] = [
  "Processing",
  "Enqueued",
  "Succeeded",
  "Failed",
  "Scheduled",
  "Deleted",
  "Awaiting",
];
/** What follows the state of a state event whose data is only its duration. */
const DURATION_DATA = ',{"durationMs":';

/** The removed jobs' shares of the pruned base, summed by field (most jobs share buckets). */
export class PrunedBase {
  #now: number;
  #created = 0;
  #ends = { succeeded: 0, failed: 0, deleted: 0 };
  #durations = new Array<number>(DURATION_FIELDS.length).fill(0);
  #durationMs = 0;
  /** Per resolution: bucket start → counts; the last bucket used is kept at hand. */
  #buckets = RESOLUTION_NAMES.map(() => new Map<number, BucketCounts>());
  #last = RESOLUTION_NAMES.map(() => ({ at: NaN, counts: { succeeded: 0, failed: 0 } }));
  #batches = new Map<string, BucketCounts & { deleted: number }>();
  #stats: PrunedStats;
  /** The state events of the job being added, as far as the statistics read them. */
  #states: JobEvent[] = [];
  /** Whether every line of the job being added was read in place. */
  #plain = true;

  /** Buckets past their keep at `now` are left out (the others expire with the buckets). */
  constructor(now: number) {
    this.#now = now;
    this.#stats = new PrunedStats(now);
  }

  /**
   * Adds one removed job: `record`, and `log`, its record line and event lines as
   * `encodeCollapsed` wrote them. Throws a `CorruptRecordError` for a line that is no event.
   */
  add(record: JobRecord, log: string): void {
    this.#states = [];
    this.#plain = true;
    for (let from = log.indexOf("\n"), index = 0; from >= 0; index++) {
      const end = log.indexOf("\n", from + 1);
      this.#line(record.id, log, from + 1, end < 0 ? log.length : end, index);
      from = end;
    }
    const group = groupOf(record);
    const kind = group === undefined ? undefined : endKind(record.state);
    if (kind) {
      let counts = this.#batches.get(group!);
      if (!counts) this.#batches.set(group!, counts = { succeeded: 0, failed: 0, deleted: 0 });
      counts[kind]++;
    }
    this.#stats.add(record, this.#states, this.#plain);
  }

  /** The sums, as increments of the pruned base's keys. */
  write(k: Keys, ops: Increments): void {
    ops.count(k.prunedTotals, "created", this.#created);
    for (const kind of ["succeeded", "failed", "deleted"] as const) {
      ops.count(k.prunedTotals, kind, this.#ends[kind]);
    }
    this.#durations.forEach((n, bucket) => ops.count(k.prunedTotals, DURATION_FIELDS[bucket], n));
    ops.count(k.prunedTotals, "duration_ms", this.#durationMs);
    RESOLUTION_NAMES.forEach((resolution, r) => {
      const { keepMs } = RESOLUTIONS[resolution];
      for (const [at, counts] of this.#buckets[r]) {
        const key = k.prunedBucket(resolution, at), expiry = String(at + keepMs);
        ops.count(key, "succeeded", counts.succeeded, expiry);
        ops.count(key, "failed", counts.failed, expiry);
      }
    });
    for (const [id, counts] of this.#batches) {
      for (const kind of ["succeeded", "failed", "deleted"] as const) {
        ops.count(k.prunedBatchCount(id), kind, counts[kind]);
      }
    }
    this.#stats.write(k, ops);
  }

  /**
   * One event line, `log` from `start` to `end`: `[at,"head"...` read in place, where heads
   * are event types (".type") and states, JSON strings without escapes; any other line is
   * decoded whole.
   */
  #line(id: string, log: string, start: number, end: number, index: number): void {
    if (index === 0 && end - start === 1 && log[start] === IMPLIED) {
      this.#created++;
      return;
    }
    const comma = log.indexOf(",", start);
    const close = comma < 0 || comma >= end ? -1 : log.indexOf('"', comma + 2);
    if (close < 0 || close >= end || log.charCodeAt(start) !== 91) {
      return this.#event(decodeEvent(id, log.slice(start, end), index));
    }
    // A state's name is matched in place (no slice, no escape to look for): most lines name one.
    const known = log.charCodeAt(comma + 1) === 34 ? stateAt(log, comma + 2, close) : undefined;
    if (
      known === undefined &&
      (log.charCodeAt(comma + 1) !== 34 || escaped(log, comma + 2, close) ||
        log.startsWith('.state"', comma + 2))
    ) return this.#event(decodeEvent(id, log.slice(start, end), index));
    const at = timeAt(log, start + 1, comma);
    if (!Number.isFinite(at)) return this.#event(decodeEvent(id, log.slice(start, end), index));
    if (known === undefined && log.charCodeAt(comma + 2) === 46) {
      if (log.startsWith('.created"', comma + 2)) this.#created++;
      return;
    }
    const state = known ?? log.slice(comma + 2, close);
    if (
      state !== "Succeeded" && state !== "Failed" && state !== "Scheduled" && state !== "Deleted"
    ) {
      // Enqueued and Processing times are all the statistics read of other states.
      this.#states.push({ type: "state", state, at } as JobEvent);
      return;
    }
    let ms: number | undefined;
    // Only a state event's data, its third item, holds a duration.
    const data = log.indexOf('"durationMs"', close);
    if (state !== "Deleted" && data >= 0 && data < end) {
      ms = log.startsWith(DURATION_DATA, close + 1) && log.startsWith("}]", end - 2)
        ? timeAt(log, close + 1 + DURATION_DATA.length, end - 2)
        : NaN;
      if (Number.isNaN(ms)) ms = undefined;
      if (ms === undefined) return this.#event(decodeEvent(id, log.slice(start, end), index));
    }
    this.#states.push(
      {
        type: "state",
        state,
        at,
        data: ms === undefined ? undefined : { durationMs: ms },
      } as JobEvent,
    );
    this.#state(state, at, ms);
  }

  /** An event decoded whole: counted as `historyOf` counts it. */
  #event(event: JobEvent): void {
    this.#plain = false;
    if (event.type === "created") this.#created++;
    if (event.type !== "state") return;
    this.#states.push(event);
    const ms = event.data?.durationMs;
    const timed = event.state === "Succeeded" || event.state === "Failed" ||
      event.state === "Scheduled";
    this.#state(event.state, event.at, timed ? ms : undefined);
  }

  #state(state: string, at: number, ms: number | undefined): void {
    if (ms !== undefined) {
      this.#durations[durationBucket(ms)]++;
      this.#durationMs += Math.max(0, Math.round(ms));
    }
    const kind = endKind(state as State);
    if (!kind) return;
    this.#ends[kind]++;
    if (kind === "deleted") return;
    for (let r = 0; r < RESOLUTION_NAMES.length; r++) {
      const { ms: size, keepMs } = RESOLUTIONS[RESOLUTION_NAMES[r]];
      const bucket = Math.floor(at / size) * size;
      if (bucket < this.#now - keepMs) continue;
      const last = this.#last[r];
      if (last.at !== bucket) {
        let counts = this.#buckets[r].get(bucket);
        if (!counts) this.#buckets[r].set(bucket, counts = { succeeded: 0, failed: 0 });
        last.at = bucket;
        last.counts = counts;
      }
      last.counts[kind]++;
    }
  }
}

/** The state named by `text[from, to)`, or undefined when it names none. */
function stateAt(text: string, from: number, to: number): State | undefined {
  const length = to - from;
  for (const state of HEADS) {
    if (state.length === length && text.startsWith(state, from)) return state;
  }
  return undefined;
}

/** True when `text[from, to)` holds a backslash (an escape the in-place reading does not undo). */
function escaped(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (text.charCodeAt(i) === 92) return true;
  return false;
}

/** The integer of digits `text[from, to)`, else the JSON number there, else NaN (times, durations). */
function timeAt(text: string, from: number, to: number): number {
  // Summed in two halves that stay small integers: a 13-digit time overflows int32 arithmetic.
  let high = 0, low = 0;
  const split = Math.max(from, to - 7);
  for (let i = from; i < to; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return numberIn(text, from, to) ?? NaN;
    if (i < split) high = high * 10 + digit;
    else low = low * 10 + digit;
  }
  return to > from ? high * 10_000_000 + low : NaN;
}

/** The JSON number `text[from, to)`, or undefined when it is none. */
function numberIn(text: string, from: number, to: number): number | undefined {
  try {
    const value = JSON.parse(text.slice(from, to));
    return typeof value === "number" ? value : undefined;
  } catch {
    return undefined;
  }
}
