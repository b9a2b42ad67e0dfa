/**
 * @module
 * The statistics a transition counts (see `stats.ts`): per job name, each attempt's outcome and
 * duration bucket; per queue, how long a started job waited since it entered Enqueued. Pure and
 * shared by every backend and by rebuild, like the rest of `effects.ts`.
 */

import type { JobEvent } from "../lib/events.ts";
import type { JobRecord } from "../lib/job.ts";
import {
  histogramBucket,
  RESOLUTIONS,
  STAT_RESOLUTIONS,
  type StatHit,
  WAIT_BUCKETS_MS,
} from "./stats.ts";

/**
 * The statistics counted by `events` appended to a job whose stored record was `before` (null
 * for a new job, or for a rebuild replaying the whole log); `record` is the job after them.
 */
export function statHits(
  before: JobRecord | null,
  events: readonly JobEvent[],
  record: JobRecord,
): StatHit[] {
  const hits: StatHit[] = [];
  // A started job waited since it last entered Enqueued (its due time is not on its record).
  let readySince = before?.state === "Enqueued" ? before.stateAt : undefined;
  for (const event of events) {
    if (event.type !== "state") continue;
    const { state, at, data } = event;
    if (state === "Enqueued") {
      readySince = at;
      continue;
    }
    if (state === "Processing" && readySince !== undefined) {
      const ms = Math.max(0, at - readySince);
      count(hits, "wait", record.queue, at, String(histogramBucket(ms, WAIT_BUCKETS_MS)), ms);
    }
    readySince = undefined;
    const ms = data?.durationMs;
    const outcome = state === "Succeeded"
      ? "succeeded"
      : state === "Failed"
      ? "failed"
      : state === "Scheduled" && ms !== undefined
      ? (data?.retryOf !== undefined ? "retried" : "snoozed")
      : undefined;
    if (!outcome) continue;
    const measure = `${outcome}:${ms === undefined ? "-" : histogramBucket(ms)}`;
    count(hits, "job", record.name, at, measure, ms);
  }
  return hits;
}

/** One observation: its measure in each bucket and the totals, and its `ms` in the totals. */
function count(
  hits: StatHit[],
  series: "job" | "wait",
  subject: string,
  at: number,
  measure: string,
  ms?: number,
): void {
  const field = fieldOf(series, subject, measure);
  for (const resolution of STAT_RESOLUTIONS) {
    const size = RESOLUTIONS[resolution].ms;
    hits.push({ resolution, at: Math.floor(at / size) * size, field, n: 1 });
  }
  hits.push({ resolution: "total", at: 0, field, n: 1 });
  if (ms !== undefined) {
    const sum = fieldOf(series, subject, "ms");
    hits.push({ resolution: "total", at: 0, field: sum, n: Math.max(0, Math.round(ms)) });
  }
}

/** Field names by series and subject, then measure, made once (bounded: cleared when large). */
const fields = {
  job: new Map<string, Map<string, string>>(),
  wait: new Map<string, Map<string, string>>(),
};

/**
 * The field `<series>|<subject>|<measure>`, the same string each time: backends key maps by it,
 * and a string made anew is hashed anew at every lookup (two transitions per job).
 */
function fieldOf(series: "job" | "wait", subject: string, measure: string): string {
  const bySubject = fields[series];
  let measures = bySubject.get(subject);
  if (!measures) {
    if (bySubject.size >= 1_000) bySubject.clear();
    bySubject.set(subject, measures = new Map());
  }
  let field = measures.get(measure);
  if (field === undefined) measures.set(measure, field = `${series}|${subject}|${measure}`);
  return field;
}

/** The hits of `hits` still within their resolution's keep at `now` (totals are kept for ever). */
export function keptStats(hits: readonly StatHit[], now: number): StatHit[] {
  return hits.filter((h) =>
    h.resolution === "total" || h.at >= now - RESOLUTIONS[h.resolution].keepMs
  );
}
