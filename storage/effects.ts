/**
 * @module
 * What a commit does to the projections besides the job record: index moves, counter deltas,
 * time buckets. Shared by every backend (and by rebuild, which replays each job as one commit
 * from nothing), so all backends count the same way.
 */

import { CorruptRecordError, InvalidOptionError } from "./errors.ts";
import type { JobEvent } from "../lib/events.ts";
import type { JobRecord } from "../lib/job.ts";
import type { State } from "../lib/states.ts";
import type {
  BatchCounts,
  Change,
  Commit,
  Counts,
  FinalState,
  Removal,
  Resolution,
} from "./storage.ts";
import { RESOLUTIONS } from "./storage.ts";
import { DURATION_BUCKETS_MS, histogramBucket, type StatHit } from "./stats.ts";
import { keptStats, statHits } from "./stat_hits.ts";

export { DURATION_BUCKETS_MS };

const RESOLUTION_NAMES = Object.keys(RESOLUTIONS) as Resolution[];

/** Position of a job in its per-state index (newest first when listed). */
export interface StateEntry {
  state: State;
  at: number;
  id: string;
}

/** Position of an Enqueued job in its queue's ready index (claim order). */
export interface ReadyEntry {
  queue: string;
  /** Negated priority, so that ascending order puts higher priorities first. */
  rank: number;
  at: number;
  id: string;
}

/** Position of a Scheduled job in the due index. */
export interface DueEntry {
  runAt: number;
  id: string;
}

/** A counter increment into a time bucket. */
export interface BucketHit {
  resolution: Resolution;
  at: number;
  kind: "succeeded" | "failed";
}

/**
 * Everything a commit changes outside the job record and its events. The lists are read only:
 * an empty one is the shared {@link NONE}, and a list of one item is made at its size (a push
 * onto an empty array reserves spare slots, and a busy worker computes two of these per job).
 */
export interface Effects {
  removeState?: StateEntry;
  addState?: StateEntry;
  removeReady?: ReadyEntry;
  addReady?: ReadyEntry;
  removeDue?: DueEntry;
  addDue?: DueEntry;
  /** The job left Processing: its lease goes. (Entering Processing sets `commit.lease`.) */
  dropLease: boolean;
  /** Gauge deltas per queue and state (the per-state gauge is their sum). */
  gauges: readonly GaugeDelta[];
  totals: readonly (keyof Counts["totals"])[];
  buckets: readonly BucketHit[];
  /** A new job: its place in the name index (search by name prefix). */
  addName?: NameEntry;
  /** A batch member entered or left an end state: its batch's counts move. */
  batch?: { id: string; deltas: Array<{ kind: keyof BatchCounts; delta: number }> };
  /** Change in the number of jobs waiting to retry (Scheduled with `retryOf`). */
  retrying: number;
  /** Finished attempts: the duration histogram bucket of each, and its length. */
  durations: readonly DurationHit[];
  /** Statistics counters (see `stats.ts`): attempt outcomes per name, waits per queue. */
  stats: readonly StatHit[];
}

/** A gauge delta of one queue and state. */
export interface GaugeDelta {
  queue: string;
  state: State;
  delta: number;
}

/** A finished attempt: its duration histogram bucket, and its length. */
export interface DurationHit {
  bucket: number;
  ms: number;
}

/** The empty list of {@link Effects}, shared. */
const NONE: readonly never[] = Object.freeze([]);

/** `list` followed by `items`, in an array of that size (neither is changed). */
function plus<T>(list: readonly T[], items: readonly T[]): readonly T[] {
  return list.length === 0 ? items : [...list, ...items];
}

/** Position of a job in the name index: by name, newest first. */
export interface NameEntry {
  name: string;
  createdAt: number;
  id: string;
}

/** The histogram bucket of a duration: the first upper bound it does not exceed. */
export function durationBucket(ms: number): number {
  return histogramBucket(ms);
}

/** Index position of `record` in the per-state index. */
export function stateEntry(record: JobRecord): StateEntry {
  return { state: record.state, at: record.stateAt, id: record.id };
}

/** Index position of `record` in its ready index, when Enqueued. */
export function readyEntry(record: JobRecord): ReadyEntry | undefined {
  if (record.state !== "Enqueued") return undefined;
  return { queue: record.queue, rank: -record.priority, at: record.stateAt, id: record.id };
}

/** Index position of `record` in the due index, when Scheduled. */
export function dueEntry(record: JobRecord): DueEntry | undefined {
  if (record.state !== "Scheduled") return undefined;
  return { runAt: record.runAt ?? record.stateAt, id: record.id };
}

/** Start of the bucket of `resolution` that holds time `at`. */
export function bucketStart(resolution: Resolution, at: number): number {
  const ms = RESOLUTIONS[resolution].ms;
  return Math.floor(at / ms) * ms;
}

/** Computes the effects of `commit` on a job whose stored record was `before`. */
export function effectsOf(before: JobRecord | null, commit: Commit): Effects {
  const after = commit.record;
  // One literal with every field: properties added one by one would grow the object's
  // property store step by step, twice per job on a busy worker.
  const effects: Effects = {
    removeState: undefined,
    addState: undefined,
    removeReady: undefined,
    addReady: undefined,
    removeDue: undefined,
    addDue: undefined,
    dropLease: false,
    gauges: NONE,
    totals: NONE,
    buckets: NONE,
    addName: undefined,
    batch: undefined,
    retrying: Number(isRetry(after)) - Number(before !== null && isRetry(before)),
    durations: NONE,
    stats: statHits(before, commit.events, after),
  };
  const moved = !before || before.state !== after.state || before.stateAt !== after.stateAt ||
    before.queue !== after.queue || before.priority !== after.priority ||
    before.runAt !== after.runAt;
  if (moved) {
    const entered: GaugeDelta = { queue: after.queue, state: after.state, delta: 1 };
    if (before) {
      effects.removeState = stateEntry(before);
      effects.removeReady = readyEntry(before);
      effects.removeDue = dueEntry(before);
      effects.gauges = [{ queue: before.queue, state: before.state, delta: -1 }, entered];
      effects.dropLease = before.state === "Processing";
    } else {
      effects.gauges = [entered];
    }
    effects.addState = stateEntry(after);
    effects.addReady = readyEntry(after);
    effects.addDue = dueEntry(after);
    if (after.state === "Processing") effects.dropLease = false;
    const was = before?.batchId ?? before?.flowId, is = after.batchId ?? after.flowId;
    const left = was !== undefined ? endKind(before!.state) : undefined;
    const joined = is !== undefined ? endKind(after.state) : undefined;
    if (left || joined) {
      const deltas: Array<{ kind: keyof BatchCounts; delta: number }> = [];
      if (left) deltas.push({ kind: left, delta: -1 });
      if (joined) deltas.push({ kind: joined, delta: 1 });
      effects.batch = { id: groupOf(after) ?? groupOf(before!)!, deltas };
    }
  }
  for (const event of commit.events) {
    if (event.type === "created") {
      effects.totals = plus(effects.totals, ["created"]);
      effects.addName = { name: after.name, createdAt: after.createdAt, id: after.id };
    }
    if (event.type !== "state") continue;
    const ms = event.data?.durationMs;
    if (
      ms !== undefined &&
      (event.state === "Succeeded" || event.state === "Failed" || event.state === "Scheduled")
    ) {
      effects.durations = plus(effects.durations, [{ bucket: durationBucket(ms), ms }]);
    }
    const kind = endKind(event.state);
    if (!kind) continue;
    effects.totals = plus(effects.totals, [kind]);
    if (kind === "deleted") continue;
    effects.buckets = plus(
      effects.buckets,
      RESOLUTION_NAMES.map((resolution) => bucketHit(resolution, event.at, kind)),
    );
  }
  return effects;
}

/**
 * What a job's whole log added to the all-time history (totals, durations, time buckets, its
 * batch's counts): `remove` keeps it as the pruned base that `rebuild` starts from, since a
 * removed job leaves no log to count it from. Its gauges and index entries are not history.
 */
export function historyOf(record: JobRecord, events: readonly JobEvent[]): Effects {
  // What `effectsOf(null, ...)` counts for the whole log, without its index entries: this runs
  // for every job pruned.
  const totals: (keyof Counts["totals"])[] = [];
  const durations: DurationHit[] = [];
  const buckets: BucketHit[] = [];
  for (const event of events) {
    if (event.type === "created") totals.push("created");
    if (event.type !== "state") continue;
    const ms = event.data?.durationMs;
    if (
      ms !== undefined &&
      (event.state === "Succeeded" || event.state === "Failed" || event.state === "Scheduled")
    ) {
      durations.push({ bucket: durationBucket(ms), ms });
    }
    const kind = endKind(event.state);
    if (!kind) continue;
    totals.push(kind);
    if (kind === "deleted") continue;
    for (const resolution of RESOLUTION_NAMES) buckets.push(bucketHit(resolution, event.at, kind));
  }
  const group = groupOf(record);
  const joined = group ? endKind(record.state) : undefined;
  return {
    removeState: undefined,
    addState: undefined,
    removeReady: undefined,
    addReady: readyEntry(record),
    removeDue: undefined,
    addDue: dueEntry(record),
    dropLease: false,
    gauges: NONE,
    totals,
    buckets,
    addName: undefined,
    batch: joined ? { id: group!, deltas: [{ kind: joined, delta: 1 }] } : undefined,
    retrying: 0,
    durations,
    stats: statHits(null, events, record),
  };
}

/** The hits of `buckets` still within their resolution's keep at `now` (older ones are dropped). */
export function keptBuckets(buckets: readonly BucketHit[], now: number): BucketHit[] {
  return buckets.filter((b) => b.at >= now - RESOLUTIONS[b.resolution].keepMs);
}

/** `effects` with only the time buckets and statistics buckets still kept at `now`. */
export function kept(effects: Effects, now: number): Effects {
  return {
    ...effects,
    buckets: keptBuckets(effects.buckets, now),
    stats: keptStats(effects.stats, now),
  };
}

function bucketHit(resolution: Resolution, at: number, kind: BucketHit["kind"]): BucketHit {
  return { resolution, at: bucketStart(resolution, at), kind };
}

/**
 * Whose end-state counts a job moves: its batch's, or its flow's (`flow/<root id>`: no batch id
 * has a `/`), or none.
 */
export function groupOf(record: JobRecord): string | undefined {
  return record.batchId ?? (record.flowId === undefined ? undefined : `flow/${record.flowId}`);
}

/** The end-state count (batch counts, totals, time buckets) a state adds to. */
export function endKind(state: State): keyof BatchCounts | undefined {
  return state === "Succeeded"
    ? "succeeded"
    : state === "Failed"
    ? "failed"
    : state === "Deleted"
    ? "deleted"
    : undefined;
}

/** True for a job in a final state, the only kind the storage's `remove` removes. */
export function isFinal(state: State): state is FinalState {
  return state === "Succeeded" || state === "Failed" || state === "Deleted";
}

/**
 * The removals of a `remove` call that may go ahead: `read` holds the stored records of
 * `removals` in order (at most `most` of them); a removal goes when its job is stored at its version and in a final
 * state (each job once). Backends still check in the same atomic write that nothing moved.
 */
export function removable(
  removals: readonly Removal[],
  read: readonly (JobRecord | null)[],
  most: number,
): { records: JobRecord[]; refused: string[] } {
  if (removals.length > most) {
    throw new InvalidOptionError(
      "removals",
      removals.length,
      `is more than one remove call takes (limits.maxRemovals: ${most})`,
    );
  }
  const records: JobRecord[] = [], refused: string[] = [];
  const seen = new Set<string>();
  removals.forEach(({ id, version }, i) => {
    const record = read[i];
    if (!record || record.version !== version || !isFinal(record.state) || seen.has(id)) {
      refused.push(id);
    } else {
      seen.add(id);
      records.push(record);
    }
  });
  return { records, refused };
}

/**
 * True when job `a` was created after job `b` (by `createdAt`, then id): in a rebuild, the
 * later of two jobs with the same unique key holds it, as every claim is made by a create.
 */
export function createdLater(
  a: Pick<JobRecord, "createdAt" | "id">,
  b: Pick<JobRecord, "createdAt" | "id">,
): boolean {
  return a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.id > b.id);
}

/** True for a job waiting to retry after a failed attempt. */
export function isRetry(record: JobRecord): boolean {
  return record.state === "Scheduled" && record.retryOf !== undefined;
}

/** Zeroed all-time totals. */
export function zeroTotals(): Counts["totals"] {
  return { created: 0, succeeded: 0, failed: 0, deleted: 0, pruned: 0 };
}

/** A zeroed duration histogram. */
export function zeroDurations(): Counts["durations"] {
  return { counts: new Array(DURATION_BUCKETS_MS.length + 1).fill(0), sumMs: 0 };
}

/** Zeroed end-state counts of a batch. */
export function zeroBatchCounts(): BatchCounts {
  return { succeeded: 0, failed: 0, deleted: 0 };
}

/** Zeroed counts for every state. */
export function zeroStates(): Record<State, number> {
  return {
    Scheduled: 0,
    Enqueued: 0,
    Awaiting: 0,
    Processing: 0,
    Succeeded: 0,
    Failed: 0,
    Deleted: 0,
  };
}

/** Refuses a commit whose events and record do not line up (a bug in the caller, never data). */
export function checkCommit(commit: Commit): void {
  const { id, expect, events, record } = commit;
  const problem = record.id !== id
    ? `record id ${record.id} in its commit`
    : events.length === 0
    ? "a commit without events"
    : events.some((e, i) => e.seq !== expect + i + 1)
    ? `event seqs ${events.map((e) => e.seq).join(",")} after version ${expect}`
    : record.version !== expect + events.length
    ? `record version ${record.version} after ${events.length} events on version ${expect}`
    : commit.before && (commit.before.id !== id || commit.before.version !== expect)
    ? `a commit on version ${expect} built on ${commit.before.id} at version ${commit.before.version}`
    : undefined;
  if (problem) throw new CorruptRecordError(id, problem);
}

/** Refuses a malformed change: a bad commit (see {@link checkCommit}), or one job twice. */
export function checkChange(change: Change): void {
  if (change.cap) checkCap(change);
  if (change.commits.length === 1) return checkCommit(change.commits[0]);
  const ids = new Set<string>();
  for (const commit of change.commits) {
    checkCommit(commit);
    if (ids.has(commit.id)) {
      throw new CorruptRecordError(commit.id, "a change with two commits on the same job");
    }
    ids.add(commit.id);
  }
}

/** A capped change only claims jobs of its queue (the backends count its commits as claims). */
function checkCap({ cap, commits }: Change): void {
  for (const { id, record } of commits) {
    if (record.state !== "Processing" || record.queue !== cap!.queue) {
      throw new CorruptRecordError(id, `a change capped on queue ${cap!.queue} that is no claim`);
    }
  }
}
