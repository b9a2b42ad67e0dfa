/**
 * @module
 * Reading the statistics counters (`storage/stats.ts`) as answers: per job name, attempts,
 * failure rate and duration percentiles over a window; per minute, queue wait percentiles; and
 * the all-time histograms `/metrics` exports. Pure, over what `Storage.stats` returns.
 */

import { InvalidOptionError } from "../storage/errors.ts";
import {
  DURATION_BUCKETS_MS,
  parseStatField,
  RESOLUTIONS,
  type StatPoint,
  type StatResolution,
  WAIT_BUCKETS_MS,
} from "../storage/stats.ts";
import type { Storage } from "../storage/storage.ts";
import { checkQueueName } from "./job.ts";
import { readOptions } from "./options.ts";
import { readRange } from "./queries.ts";

/** The windows {@link JobStats} are read over, and the buckets each sums. */
export const STAT_WINDOWS = {
  "1h": { resolution: "minute", ms: 3_600_000 },
  "24h": { resolution: "hour", ms: 86_400_000 },
  "7d": { resolution: "hour", ms: 7 * 86_400_000 },
  "all": { resolution: "total", ms: Infinity },
} as const;

/** A window of {@link JobStats}: the last hour, day or week (whole buckets), or all time. */
export type StatWindow = keyof typeof STAT_WINDOWS;

/** A histogram: counts per bucket (not cumulative; one more than `bounds`, the rest). */
export interface Histogram {
  /** Upper bounds of the buckets, in ms; the last bucket has none. */
  bounds: readonly number[];
  /** Observations per bucket. */
  counts: number[];
  /** Sum of the observations, in ms (all-time histograms only; 0 in a window). */
  sumMs: number;
}

/** Attempts of one job name over a window. */
export interface JobStats {
  /** The job name. */
  name: string;
  /** Attempts that ended the job Succeeded. */
  succeeded: number;
  /** Jobs that ended Failed (attempts exhausted, or failed without running). */
  failed: number;
  /** Attempts that failed and were scheduled to retry. */
  retried: number;
  /** Attempts the handler snoozed. */
  snoozed: number;
  /** `failed / (succeeded + failed)`, or 0 when nothing ended. */
  failureRate: number;
  /** Attempt durations (attempts whose duration is known). */
  durations: Histogram;
  /** Duration percentiles in ms, interpolated within their bucket (undefined: no attempt). */
  p50Ms?: number;
  /** 95th percentile, see {@link JobStats.p50Ms}. */
  p95Ms?: number;
  /** 99th percentile, see {@link JobStats.p50Ms}. */
  p99Ms?: number;
}

/** Queue waits (enqueued → started) of the jobs started in one minute. */
export interface WaitPoint {
  /** Start of the minute (ms since epoch). */
  at: number;
  /** Jobs started in it. */
  started: number;
  /** Median wait in ms (undefined when none started). */
  p50Ms?: number;
  /** 95th percentile wait in ms. */
  p95Ms?: number;
}

/** All-time statistics, as `/metrics` exports them. */
export interface StatTotals {
  /** Per job name: outcomes (`succeeded`, `failed`, `retried`, `snoozed`) and durations. */
  jobs: Record<string, { outcomes: Record<string, number>; durations: Histogram }>;
  /** Per queue: how long started jobs waited. */
  waits: Record<string, Histogram>;
}

/**
 * The value below which a fraction `q` of a histogram's observations lie, interpolated
 * linearly within its bucket (as Prometheus' `histogram_quantile`); an observation in the
 * unbounded last bucket counts as the last bound. Undefined for an empty histogram.
 */
export function quantile(q: number, { bounds, counts }: Histogram): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] === 0 || seen + counts[i] < rank) {
      seen += counts[i];
      continue;
    }
    if (i >= bounds.length) return bounds[bounds.length - 1];
    const low = i === 0 ? 0 : bounds[i - 1];
    return low + (bounds[i] - low) * ((rank - seen) / counts[i]);
  }
  return bounds[bounds.length - 1];
}

const histogram = (bounds: readonly number[]): Histogram => ({
  bounds,
  counts: new Array(bounds.length + 1).fill(0),
  sumMs: 0,
});

/** Adds a counter's `n` observations of bucket `measure` (or the `ms` sum) to `h`. */
function observe(h: Histogram, measure: string, n: number): void {
  if (measure === "ms") h.sumMs += n;
  else if (measure !== "-" && h.counts[Number(measure)] !== undefined) {
    h.counts[Number(measure)] += n;
  }
}

/** How an attempt ended, as the `job` statistics count it. */
const OUTCOMES = ["succeeded", "failed", "retried", "snoozed"] as const;

function isOutcome(text: string): text is typeof OUTCOMES[number] {
  return (OUTCOMES as readonly string[]).includes(text);
}

/** Per job name, what the `job|` counters of `points` add up to, by name. */
export function jobStatsOf(points: readonly StatPoint[]): JobStats[] {
  const byName = new Map<string, JobStats>();
  for (const { counts } of points) {
    for (const [field, n] of Object.entries(counts)) {
      const parsed = parseStatField(field);
      if (parsed?.series !== "job") continue;
      let stats = byName.get(parsed.subject);
      if (!stats) {
        byName.set(
          parsed.subject,
          stats = {
            name: parsed.subject,
            succeeded: 0,
            failed: 0,
            retried: 0,
            snoozed: 0,
            failureRate: 0,
            durations: histogram(DURATION_BUCKETS_MS),
          },
        );
      }
      const [outcome, bucket] = parsed.measure.split(":");
      if (outcome === "ms") observe(stats.durations, "ms", n);
      else if (bucket !== undefined && isOutcome(outcome)) {
        stats[outcome] += n;
        observe(stats.durations, bucket, n);
      }
    }
  }
  return [...byName.values()].map((s) => {
    const ended = s.succeeded + s.failed;
    return {
      ...s,
      failureRate: ended ? s.failed / ended : 0,
      p50Ms: quantile(0.5, s.durations),
      p95Ms: quantile(0.95, s.durations),
      p99Ms: quantile(0.99, s.durations),
    };
  }).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** Per point of `points` (minute buckets), the wait percentiles of every queue together. */
export function waitPointsOf(points: readonly StatPoint[]): WaitPoint[] {
  return points.map(({ at, counts }) => {
    const h = histogram(WAIT_BUCKETS_MS);
    for (const [field, n] of Object.entries(counts)) {
      const parsed = parseStatField(field);
      if (parsed?.series === "wait") observe(h, parsed.measure, n);
    }
    const started = h.counts.reduce((a, b) => a + b, 0);
    return { at, started, p50Ms: quantile(0.5, h), p95Ms: quantile(0.95, h) };
  });
}

/** The all-time counters of `point` (from `stats({ resolution: "total" })`), by name and queue. */
export function statTotalsOf(point: StatPoint | undefined): StatTotals {
  const totals: StatTotals = { jobs: {}, waits: {} };
  for (const [field, n] of Object.entries(point?.counts ?? {})) {
    const parsed = parseStatField(field);
    if (parsed?.series === "wait") {
      observe(totals.waits[parsed.subject] ??= histogram(WAIT_BUCKETS_MS), parsed.measure, n);
    } else if (parsed?.series === "job") {
      const job = totals.jobs[parsed.subject] ??= {
        outcomes: {},
        durations: histogram(DURATION_BUCKETS_MS),
      };
      const [outcome, bucket] = parsed.measure.split(":");
      if (bucket !== undefined) job.outcomes[outcome] = (job.outcomes[outcome] ?? 0) + n;
      observe(job.durations, bucket ?? outcome, n);
    }
  }
  return totals;
}

/** The first bucket of `resolution` inside the `ms` before `now` (the window's whole buckets). */
export function windowStart(resolution: StatResolution, ms: number, now: number): number {
  if (resolution === "total") return 0;
  const size = RESOLUTIONS[resolution].ms;
  return Math.floor((now - ms) / size) * size + size;
}

/** Reads `{ window, name }` for `TaskFlow.jobStats`, checked. */
export function readJobStatsOptions(options: unknown): { window: StatWindow; name?: string } {
  const { window = "24h", name } = readOptions(options, {
    call: "jobStats",
    allowed: ["window", "name"],
  });
  if (typeof window !== "string" || !Object.hasOwn(STAT_WINDOWS, window)) {
    throw new InvalidOptionError(
      "jobStats window",
      window,
      `must be one of ${Object.keys(STAT_WINDOWS).join(", ")}`,
    );
  }
  if (name !== undefined && (typeof name !== "string" || !name || name.length > 200)) {
    throw new InvalidOptionError("jobStats name", name, "must be a job name");
  }
  return { window: window as StatWindow, name: name as string | undefined };
}

/** Job stats of every name (or one) over a window, read from `storage`. */
export async function readJobStats(
  storage: Storage,
  options: { window: StatWindow; name?: string },
  now: number,
): Promise<JobStats[]> {
  const { resolution, ms } = STAT_WINDOWS[options.window];
  const prefix = options.name === undefined ? "job|" : `job|${options.name}|`;
  const points = await storage.stats({
    resolution,
    from: windowStart(resolution, ms, now),
    to: now,
    prefix,
  });
  return jobStatsOf(points);
}

/** Minute wait percentiles from `from` to `to`, of one queue or all; zero minutes included. */
export async function readWaitTimes(
  storage: Storage,
  range: { from: number; to: number },
  queue?: string,
): Promise<WaitPoint[]> {
  if (queue !== undefined) checkQueueName(queue);
  const size = RESOLUTIONS.minute.ms;
  const { from, to } = readRange(range, "minute", size);
  const points = await storage.stats({
    resolution: "minute",
    from,
    to,
    prefix: queue === undefined ? "wait|" : `wait|${queue}|`,
  });
  const byAt = new Map(points.map((p) => [p.at, p]));
  const all: StatPoint[] = [];
  for (let at = Math.floor(from / size) * size; at <= to; at += size) {
    all.push(byAt.get(at) ?? { at, counts: {} });
  }
  return waitPointsOf(all);
}
