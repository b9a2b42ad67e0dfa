/**
 * @module
 * Time buckets and statistics counters: their sizes, how long each is kept, the histogram
 * bounds, and how a statistics counter is named. Types and constants only (no imports), shared
 * by the contract, the effects every backend writes, and lib's reads.
 */

/** Bucket sizes kept for graphs, and how long each is kept. */
export const RESOLUTIONS = {
  second: { ms: 1_000, keepMs: 15 * 60_000 },
  minute: { ms: 60_000, keepMs: 3 * 3_600_000 },
  hour: { ms: 3_600_000, keepMs: 8 * 86_400_000 },
} as const;

/** A timeline bucket size. */
export type Resolution = keyof typeof RESOLUTIONS;

/** One bucket of the succeeded/failed history. */
export interface TimelinePoint {
  /** Start of the bucket (ms since epoch). */
  at: number;
  /** Jobs that entered Succeeded in this bucket. */
  succeeded: number;
  /** Jobs that entered Failed in this bucket. */
  failed: number;
}

/** Upper bounds (ms) of the job duration histogram's buckets; the last bucket is unbounded. */
export const DURATION_BUCKETS_MS = [
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1_000,
  2_500,
  5_000,
  10_000,
  30_000,
  60_000,
];

/**
 * Upper bounds (ms) of the queue wait histogram's buckets (enqueued → started): the duration
 * bounds, then minutes to an hour, since a backlog waits far longer than a job runs.
 */
export const WAIT_BUCKETS_MS = [...DURATION_BUCKETS_MS, 300_000, 900_000, 3_600_000];

/** The histogram bucket of `ms` under `bounds`: the first upper bound it does not exceed. */
export function histogramBucket(ms: number, bounds: readonly number[] = DURATION_BUCKETS_MS) {
  const i = bounds.findIndex((le) => ms <= le);
  return i === -1 ? bounds.length : i;
}

/**
 * Resolutions statistics are kept at: per-minute and per-hour buckets (kept as long as the
 * timeline's), and `"total"`, all-time counters (one point at 0) that never expire.
 */
export type StatResolution = "minute" | "hour" | "total";

/** The resolutions with buckets that statistics are counted in. */
export const STAT_RESOLUTIONS = ["minute", "hour"] as const;

/**
 * The series of statistics: `job`, per job name, attempt outcomes (`succeeded`, `failed`,
 * `retried`, `snoozed`) with the attempt's duration bucket; `wait`, per queue, how long jobs
 * waited from entering Enqueued to being started.
 */
export type StatSeries = "job" | "wait";

/**
 * A statistics counter's name: `<series>|<subject>|<measure>`, the subject a job name or queue
 * (it may hold `|`: the series is before the first, the measure after the last). Measures:
 * `job` `<outcome>:<bucket>` (bucket `-` when the attempt's duration is unknown), `wait`
 * `<bucket>`, and in the totals both `ms`, the sum of the durations or waits.
 */
export type StatField = string;

/** A counter increment: `n` added to `field` of the bucket of `resolution` starting at `at`. */
export interface StatHit {
  /** The bucket size, or `"total"`. */
  resolution: StatResolution;
  /** Start of the bucket (ms since epoch); 0 for `"total"`. */
  at: number;
  /** The counter (see {@link StatField}). */
  field: StatField;
  /** What is added. */
  n: number;
}

/** What `Storage.stats` is asked for. */
export interface StatQuery {
  /** The bucket size, or `"total"` for the all-time counters. */
  resolution: StatResolution;
  /** Buckets starting at or after this (ms since epoch); ignored for `"total"`. */
  from?: number;
  /** Buckets starting at or before this (ms since epoch); ignored for `"total"`. */
  to?: number;
  /** Only counters whose field starts with this (e.g. `job|email.send|`). */
  prefix?: string;
}

/** The counters of one bucket: only fields counted (non-zero), by field. */
export interface StatPoint {
  /** Start of the bucket (ms since epoch); 0 for the totals. */
  at: number;
  /** Counters by field (see {@link StatField}). */
  counts: Record<StatField, number>;
}

/** The series of a field (`job` or `wait`), its subject and its measure. */
export function parseStatField(
  field: StatField,
): { series: string; subject: string; measure: string } | undefined {
  const first = field.indexOf("|"), last = field.lastIndexOf("|");
  if (first < 0 || last === first) return undefined;
  return {
    series: field.slice(0, first),
    subject: field.slice(first + 1, last),
    measure: field.slice(last + 1),
  };
}

/** The points of `byAt` (bucket start → field → count) within `query`, oldest first. */
export function statPoints(
  byAt: Iterable<[number, Iterable<[StatField, number]>]>,
  query: StatQuery,
): StatPoint[] {
  const total = query.resolution === "total";
  const from = total ? 0 : query.from ?? 0, to = total ? 0 : query.to ?? Infinity;
  const prefix = query.prefix ?? "";
  const points: StatPoint[] = [];
  for (const [at, fields] of byAt) {
    if (at < from || at > to) continue;
    const counts: Record<StatField, number> = {};
    let any = false;
    for (const [field, n] of fields) {
      if (n === 0 || !field.startsWith(prefix)) continue;
      counts[field] = (counts[field] ?? 0) + n;
      any = true;
    }
    if (any) points.push({ at, counts });
  }
  return points.sort((a, b) => a.at - b.at);
}
