/**
 * @module
 * The statistics share of the Redis pruned base: what removed jobs' state events counted in
 * the statistics counters, summed per resolution, bucket and field. A job whose events were all
 * read in place is counted here as `statHits` counts it, without the hit objects and field
 * strings it makes per call (most of what summing the base cost); any other job is counted
 * through `statHits` itself.
 */

import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import { statHits } from "../stat_hits.ts";
import {
  histogramBucket,
  RESOLUTIONS,
  STAT_RESOLUTIONS,
  type StatResolution,
  WAIT_BUCKETS_MS,
} from "../stats.ts";
import type { Keys } from "./keys.ts";

/** Receives the base's increments: `field` of hash `key` by `n`, the key expiring at `expiry`. */
export interface Increments {
  count(key: string, field: string, n: number, expiry?: string): void;
}

/** The `job` series' outcomes by index (0: a `wait` field, which has none). */
const OUTCOMES = ["", "succeeded", "failed", "snoozed"] as const;
/** A subject's field names are kept by slot: outcome × 32 + bucket (-1: none), or `MS`. */
const SLOTS = 32, MS = OUTCOMES.length * SLOTS;

/** Statistics counters of removed jobs, by resolution, bucket start and field. */
export class PrunedStats {
  #now: number;
  #stats = new Map<StatResolution, Map<number, Map<string, number>>>();
  /** Per resolution, the bucket used last (most jobs of a slice share it). */
  #last = {
    minute: { at: NaN, fields: new Map<string, number>() },
    hour: { at: NaN, fields: new Map<string, number>() },
    total: { at: NaN, fields: new Map<string, number>() },
  } satisfies Record<StatResolution, unknown>;
  /** Field names by series and subject, then slot (see {@link PrunedStats.#field}), made once. */
  #fields = { job: new Map<string, string[]>(), wait: new Map<string, string[]>() };

  /** Buckets past their keep at `now` are left out (the others expire with the buckets). */
  constructor(now: number) {
    this.#now = now;
  }

  /**
   * Counts `record`'s state events `states`. `plain` says they were all read in place: state,
   * time and at most a duration each (no `retryOf`), so this class counts them itself.
   */
  add(record: JobRecord, states: readonly JobEvent[], plain: boolean): void {
    if (!plain) {
      for (const hit of statHits(null, states, record)) {
        this.#add(hit.resolution, hit.at, hit.field, hit.n);
      }
      return;
    }
    // As `statHits` counts a job's events from its creation (see there).
    let readySince: number | undefined;
    for (const event of states) {
      if (event.type !== "state") continue;
      const { state, at } = event;
      if (state === "Enqueued") {
        readySince = at;
        continue;
      }
      if (state === "Processing" && readySince !== undefined) {
        const ms = Math.max(0, at - readySince);
        const bucket = histogramBucket(ms, WAIT_BUCKETS_MS);
        this.#count("wait", record.queue, at, bucket, ms);
      }
      readySince = undefined;
      const ms = event.data?.durationMs;
      // Plain events have no `retryOf`: a timed Scheduled attempt was snoozed.
      const outcome = state === "Succeeded"
        ? 1
        : state === "Failed"
        ? 2
        : state === "Scheduled" && ms !== undefined
        ? 3
        : 0;
      if (!outcome) continue;
      const bucket = ms === undefined ? -1 : histogramBucket(ms);
      this.#count("job", record.name, at, outcome * SLOTS + bucket, ms);
    }
  }

  /** The sums, as increments of the pruned base's statistics keys. */
  write(k: Keys, ops: Increments): void {
    for (const [resolution, buckets] of this.#stats) {
      for (const [at, fields] of buckets) {
        const key = `${k.prefix}pruned:${k.stat(resolution, at).slice(k.prefix.length)}`;
        const expiry = resolution === "total" ? "" : String(at + RESOLUTIONS[resolution].keepMs);
        for (const [field, n] of fields) ops.count(key, field, n, expiry);
      }
    }
  }

  /** One observation, as `statHits` counts it: in each bucket and the totals, `ms` summed. */
  #count(
    series: "job" | "wait",
    subject: string,
    at: number,
    slot: number,
    ms: number | undefined,
  ): void {
    const field = this.#field(series, subject, slot);
    for (const resolution of STAT_RESOLUTIONS) {
      const size = RESOLUTIONS[resolution].ms;
      this.#add(resolution, Math.floor(at / size) * size, field, 1);
    }
    this.#add("total", 0, field, 1);
    if (ms !== undefined) {
      this.#add("total", 0, this.#field(series, subject, MS), Math.max(0, Math.round(ms)));
    }
  }

  /**
   * `<series>|<subject>|<measure>`, the measure `<bucket>` (wait), `<outcome>:<bucket>` or
   * `<outcome>:-` (job), or `ms`, as `statHits` names it; made once per subject and slot.
   */
  #field(series: "job" | "wait", subject: string, slot: number): string {
    let names = this.#fields[series].get(subject);
    if (!names) this.#fields[series].set(subject, names = []);
    const at = slot + 1;
    if (names[at] !== undefined) return names[at];
    const outcome = OUTCOMES[Math.floor(at / SLOTS)], bucket = (at % SLOTS) - 1;
    const measure = slot === MS
      ? "ms"
      : `${outcome ? `${outcome}:` : ""}${bucket < 0 ? "-" : bucket}`;
    return names[at] = `${series}|${subject}|${measure}`;
  }

  /** Adds `n` to `field` of the bucket at `at`, unless the bucket is past its keep. */
  #add(resolution: StatResolution, at: number, field: string, n: number): void {
    // As `keptStats`: buckets past their keep are left out (totals are kept for ever).
    if (resolution !== "total" && at < this.#now - RESOLUTIONS[resolution].keepMs) return;
    const last = this.#last[resolution];
    if (last.at !== at) {
      let buckets = this.#stats.get(resolution);
      if (!buckets) this.#stats.set(resolution, buckets = new Map());
      let fields = buckets.get(at);
      if (!fields) buckets.set(at, fields = new Map());
      last.at = at;
      last.fields = fields;
    }
    last.fields.set(field, (last.fields.get(field) ?? 0) + n);
  }
}
