/**
 * @module
 * The storage contract. Storage persists and indexes; `lib/` decides what the next state is.
 * Every backend (memory, Deno KV, Redis) implements {@link Storage} and passes the shared
 * contract suite in `tests/storage_contract.ts` unchanged.
 */

import type { JobEvent } from "../lib/events.ts";
import type { JobRecord } from "../lib/job.ts";
import type { Lease } from "../lib/projection.ts";
import type { State } from "../lib/states.ts";
import type { AtomicExtra, EventFeed } from "./feed.ts";
import type { Resolution, StatPoint, StatQuery, TimelinePoint } from "./stats.ts";

export { type Resolution, RESOLUTIONS, type TimelinePoint } from "./stats.ts";

/**
 * One job's part of a write: append `events` if the job is still at version `expect`
 * (0: the job must not exist yet), and store `record` (their fold) as its new projection.
 */
export interface Commit {
  /** The job's id. */
  id: string;
  /** The job's version the commit expects (0: the job must not exist yet). */
  expect: number;
  /** The events to append to the job's log. */
  events: JobEvent[];
  /** The job's new record: the fold of its log including `events`. */
  record: JobRecord;
  /** Set when the commit moves the job into Processing. */
  lease?: Lease;
  /**
   * The record the commit was built on (its version is `expect`), when the caller has it.
   * A hint: a backend may compute index moves from it instead of reading the stored record,
   * and must still refuse the commit when the stored job is not at `expect`.
   */
  before?: JobRecord;
  /**
   * A create commit claiming a unique key: the commit applies only if the key's current holder
   * is `holder` (null: no job holds it), and makes this job its holder in the same atomic
   * write. Otherwise the commit's change is refused with this job's id among the conflicts.
   * Storage only compares and writes; lib decides whether the current holder still holds it.
   */
  unique?: UniqueClaim;
  /** A handler's own writes (`ctx.atomic`), only where `Storage.atomicExtras` is true. */
  extra?: AtomicExtra;
}

/** See {@link Commit.unique}. */
export interface UniqueClaim {
  /** The key (1–512 characters). */
  key: string;
  /** The job expected to hold the key now, or null when no job should. */
  holder: string | null;
}

/** Commits that are applied all together or not at all (a parent and its continuations). */
export interface Change {
  /** The commits, one per job, applied atomically together. */
  commits: Commit[];
  /** A queue's global concurrency limit the change's claims must fit in (see {@link Cap}). */
  cap?: Cap;
  /**
   * A settings record written in the same atomic write, by compare-and-set on its version (a
   * queue's rate window, counting the change's claims): when the stored version is not
   * `expect` (0: absent), the change is refused with the conflict `setting:<id>`.
   */
  setting?: { record: RecurringRecord; expect: number };
}

/**
 * A global concurrency limit checked in the same atomic write as a claim: every commit of the
 * change moves a job of `queue` into Processing, and the change applies only if the queue's
 * Processing gauge (counting changes applied before it in the same write) plus its commits stays
 * at most `max`; otherwise it is refused with `limited: true` and no conflicts.
 */
export interface Cap {
  /** The queue whose Processing jobs are counted. */
  queue: string;
  /** Most jobs of the queue Processing at once, across all workers. */
  max: number;
}

/**
 * The outcome of one {@link Change}: applied, or refused because these jobs had moved on, or
 * (`limited`) because its {@link Cap} was full.
 */
export type AppendResult = { ok: true } | { ok: false; conflicts: string[]; limited?: true };

/** A page of jobs and the cursor of the next page (absent on the last page). */
export interface Page {
  /** The jobs of this page. */
  jobs: JobRecord[];
  /** Cursor of the next page; absent on the last page. */
  cursor?: string;
}

/**
 * What to list: jobs in a state (newest first by time of entering it), or the ready jobs of a
 * queue (in claim order: priority, then first in first out).
 */
export type ListQuery =
  & ({ state: State; queue?: never } | { queue: string; state?: never })
  & { cursor?: string; limit?: number };

/** Counters kept in the same commits as the transitions they count. */
export interface Counts {
  /** Jobs currently in each state. */
  states: Record<State, number>;
  /** Jobs currently in each state, per queue (queues that ever had a job). */
  queues: Record<string, Record<State, number>>;
  /**
   * All-time totals: jobs created, entries into Succeeded, Failed and Deleted, and finished jobs
   * removed for good by {@link Storage.remove} (retention). Removal never lowers the others.
   */
  totals: { created: number; succeeded: number; failed: number; deleted: number; pruned: number };
  /** Jobs waiting to retry after a failed attempt (Scheduled with `retryOf`). */
  retrying: number;
  /** All-time histogram of attempt durations (see `DURATION_BUCKETS_MS` in effects.ts). */
  durations: {
    /** Attempts per bucket, not cumulative; one more entry than there are bounds (the rest). */
    counts: number[];
    /** Sum of all attempt durations, in ms. */
    sumMs: number;
  };
}

/** A search of jobs by name prefix, by name then newest first. */
export interface SearchQuery {
  /** Names starting with this (may be empty: every job). */
  namePrefix: string;
  /** From the previous page. */
  cursor?: string;
  /** Page size (default 50). */
  limit?: number;
}

/** A worker process as it announces itself with each heartbeat. */
export interface ServerInfo {
  /** The server's unique id. */
  id: string;
  /** Host the server runs on. */
  hostname: string;
  /** Process id of the server. */
  pid: number;
  /** Queues the server takes jobs from. */
  queues: string[];
  /** Most jobs the server runs at once. */
  concurrency: number;
  /** When the server started (ms since epoch). */
  startedAt: number;
  /** When the server last sent a heartbeat (ms since epoch, on its own clock: shown, not judged). */
  lastSeen: number;
  /** Jobs it is running right now. */
  inFlight: number;
}

/** A recurring job definition (scheduling itself lives in lib/). */
export interface RecurringRecord {
  /** The recurring job's id. */
  id: string;
  /** Version for compare-and-set; bumped on every write. */
  version: number;
  /** Other fields, owned by lib/. */
  [field: string]: unknown;
}

/** A heartbeat: refresh the server record and extend the leases of its in-flight jobs. */
export interface Heartbeat {
  /** The server record to store. */
  server: ServerInfo;
  /**
   * The server record expires after this many ms without a heartbeat, counted from the beat on
   * the storage's clock where it has one (Redis `TIME`), never from `lastSeen`.
   */
  ttlMs: number;
  /** Jobs this server runs; their leases are extended to `leaseUntil`. */
  leases: string[];
  /**
   * The new expiry of those leases (ms since epoch, on the beating server's clock). A lease
   * already at or past it moves to 1 ms past its expiry instead: every extension changes the
   * lease, because reapers judge liveness by a lease changing, never by comparing clocks.
   */
  leaseUntil: number;
}

/** A Processing job's lease, with the job's id (see {@link Storage.leases}). */
export interface HeldLease extends Lease {
  /** The job's id. */
  id: string;
}

/** A page of leases and the cursor of the next page (absent on the last page). */
export interface LeasePage {
  /** The leases of this page. */
  leases: HeldLease[];
  /** Cursor of the next page; absent on the last page. */
  cursor?: string;
}

/** Sizes a backend accepts, in bytes of UTF-8 JSON. */
export interface Limits {
  /** Largest job arguments accepted. */
  args: number;
  /** Largest handler result accepted. */
  result: number;
  /** Most removals one {@link Storage.remove} call takes (one atomic write holds them all). */
  maxRemovals: number;
}

/** One job to remove for good (retention): its id and the version the pruner last read. */
export interface Removal {
  /** The job's id. */
  id: string;
  /** The version the caller read; the job is removed only if it is still at it. */
  version: number;
}

/** What {@link Storage.remove} did: ids removed, and ids refused. */
export interface RemoveResult {
  /** Jobs removed, with every trace of them. */
  removed: string[];
  /** Jobs left alone: their version changed, they are not in a final state, or they are gone. */
  refused: string[];
}

/** The final states, the only ones {@link Storage.remove} removes from and `finished` lists. */
export type FinalState = "Succeeded" | "Failed" | "Deleted";

/** What {@link Storage.finished} is asked for. */
export interface FinishedQuery {
  /** The final state to list. */
  state: "Succeeded" | "Failed" | "Deleted";
  /** Only jobs that entered it at or before this time (ms since epoch). */
  before: number;
  /** From the previous page. */
  cursor?: string;
  /** Page size (default 100). */
  limit?: number;
}

/** Records written by compare-and-set on their `version` (recurring definitions, batches). */
export interface RecordStore {
  /** The record, or null. */
  get(id: string): Promise<RecurringRecord | null>;
  /** Every record, by id. */
  list(): Promise<RecurringRecord[]>;
  /** Stores `record` if the stored version equals `expect` (0: absent); false on conflict. */
  put(record: RecurringRecord, expect: number): Promise<boolean>;
  /** Deletes the record if its version equals `expect`; false on conflict or when absent. */
  delete(id: string, expect: number): Promise<boolean>;
}

/** Members of a batch in each end state. */
export interface BatchCounts {
  /** Members now Succeeded. */
  succeeded: number;
  /** Members now Failed. */
  failed: number;
  /** Members now Deleted. */
  deleted: number;
}

/** Wake-ups between writers and workers; optional, polling stays the always-correct path. */
export interface Notifier {
  /** Calls `wake` whenever work may be ready; returns a function that stops listening. */
  listen(wake: () => void): () => void;
}

/** What {@link Storage.claim} is asked for. */
export interface ClaimQuery {
  /** Queues to take jobs from, in priority order. */
  queues: readonly string[];
  /** Most jobs to claim. */
  limit: number;
  /**
   * Global concurrency limits by queue: claims of a listed queue carry its {@link Cap}, checked
   * in the claim's atomic write. Queues not listed are claimed as before.
   */
  caps?: Readonly<Record<string, number>>;
  /**
   * How many ready jobs a storage that reads ahead (Redis returns the next candidates with each
   * claim) should look at for the claims that follow; `limit` when absent.
   */
  peek?: number;
}

/**
 * Lib's decision for one ready job: the commit moving it to Processing (with its lease), or
 * null to leave the job alone. Storage never builds claim events itself. The record may be the
 * storage's own (memory): a builder only reads it.
 */
export type ClaimBuilder = (record: JobRecord) => Commit | null;

/** The outcome of {@link Storage.claim}. */
export interface ClaimResult {
  /** The commits that applied: these jobs are now Processing under the caller's lease. */
  claimed: Commit[];
  /** Some jobs were taken by someone else meanwhile: more may be ready, call again soon. */
  contended: boolean;
}

/** The storage contract every backend implements. */
export interface Storage {
  /** Human-readable address, e.g. `kv:./data/taskflow.sqlite`. */
  readonly address: string;
  /** Largest payload sizes the backend accepts. */
  readonly limits: Limits;
  /** Present when the backend can wake workers; absent means workers rely on polling. */
  readonly notifier?: Notifier;
  /** The feed of appends in commit order (`watch`, `waitFor`); see `feed.ts`. */
  readonly feed?: EventFeed;
  /** True when commits may carry a handler's own writes ({@link Commit.extra}): Deno KV. */
  readonly atomicExtras?: boolean;
  /** Append calls usefully in flight at once (the group commit's pipeline; absent: one). */
  readonly appendPipeline?: number;
  /** True when calls run in the order they are made (one connection): Redis. */
  readonly orderedCalls?: boolean;

  /**
   * Applies each change atomically (compare-and-set on every commit's `expect`), appending
   * events and updating every projection in the same atomic write. Several changes may share
   * one atomic write (group commit); a conflict refuses only the change it belongs to.
   */
  append(changes: readonly Change[]): Promise<AppendResult[]>;
  /** The record of a job, or null when it does not exist. */
  get(id: string): Promise<JobRecord | null>;
  /** The records of several jobs, in the order of `ids` (null where a job does not exist). */
  getMany(ids: readonly string[]): Promise<(JobRecord | null)[]>;
  /** A job's event log, oldest first. */
  events(id: string): Promise<JobEvent[]>;
  /**
   * The id of the job that holds unique key `key` (the last commit that claimed it), or null.
   * The holder keeps the key until another claim replaces it or it is removed (`remove`
   * deletes a removed job's keys when it still holds them).
   */
  uniqueHolder(key: string): Promise<string | null>;
  /** One page of jobs matching `query`. */
  list(query: ListQuery): Promise<Page>;
  /**
   * Jobs in final state `state`, OLDEST first by time of entering it (the order pruning
   * needs), entered at or before `before`; at most `limit` (default 100), resumable by cursor.
   */
  finished(query: FinishedQuery): Promise<Page>;
  /**
   * Removes finished jobs for good, all in one atomic write per call (at most
   * `limits.maxRemovals` removals). Each removal is checked: the stored job must be at
   * `version` (compare-and-set) and in a final state (Succeeded, Failed or Deleted); a refused
   * one is skipped and the others still go. A removed job's record, event log, every index
   * entry (state, queue, name, due), lease, unique key it still holds and any other key of it
   * are deleted; the per-state and per-queue gauges go down and `totals.pruned` goes up by the
   * number removed. The other all-time totals, the duration histogram, time buckets and batch
   * counts are not touched.
   * Idempotent: a job already gone is refused, without error. A removed id can be created
   * again.
   */
  remove(removals: readonly Removal[]): Promise<RemoveResult>;
  /** The current counters. */
  counts(): Promise<Counts>;
  /** Succeeded/failed buckets of size `resolution` from `from` to `to` (ms since epoch). */
  timeline(resolution: Resolution, from: number, to: number): Promise<TimelinePoint[]>;
  /**
   * Statistics counters (attempt outcomes and durations per job name, waits per queue; see
   * `stats.ts`), kept like the time buckets (and their totals for ever), never lowered by `remove`.
   */
  stats(query: StatQuery): Promise<StatPoint[]>;
  /**
   * Scheduled jobs due at `before` (oldest first), or Processing jobs whose lease expired
   * before `before`. Lease expiries are written on their holders' clocks, so an expired lease
   * is a hint, not a verdict: reapers watch {@link Storage.leases} change instead.
   */
  due(
    query: { state: "Scheduled" | "Processing"; before: number; limit: number },
  ): Promise<JobRecord[]>;
  /** The current lease of a Processing job. */
  lease(id: string): Promise<Lease | null>;
  /**
   * One page of the leases of all Processing jobs, whatever their expiry (reapers watch them
   * change), in no particular order; a lease present for the whole paging is listed at least
   * once. `limit` defaults to 500.
   */
  leases(query: { cursor?: string; limit?: number }): Promise<LeasePage>;
  /** Jobs whose name starts with a prefix, by name, newest first within a name. */
  search(query: SearchQuery): Promise<Page>;
  /** Queues whose jobs workers leave alone until resumed. */
  pausedQueues(): Promise<string[]>;
  /** Pauses (or resumes) a queue: workers stop (or start again) claiming from it. */
  pauseQueue(queue: string, paused: boolean): Promise<void>;
  /**
   * Optional native claim: moves up to `limit` ready jobs of `queues` (queue order, then claim
   * order) to Processing through the commits `build` makes, with compare-and-set as in
   * `append`, in fewer round trips than `list` + `append` (Redis: one Lua call once warm;
   * memory: no copies). When absent (KV), lib claims with `list` + `append`.
   */
  claim?(query: ClaimQuery, build: ClaimBuilder): Promise<ClaimResult>;

  /** Optional: a view that reads and writes in the caller's open transaction (a `pg` client). */
  inTransaction?(transaction: unknown): Storage;

  /** Writes the server record and extends leases; returns the ids whose lease this server lost. */
  heartbeat(beat: Heartbeat): Promise<{ lost: string[] }>;
  /** The servers whose record has not expired. */
  servers(): Promise<ServerInfo[]>;
  /** Deletes a server record. */
  removeServer(id: string): Promise<void>;

  /** Recurring job definitions, written by compare-and-set (scheduling lives in lib/). */
  recurring: RecordStore;
  /** Batch records (progress lives in the members' projections; see `batchCounts`). */
  batches: RecordStore;
  /** Flow records (progress lives in the nodes' projections: `batchCounts("flow/<id>")`). */
  flows: RecordStore;
  /** Small settings records by id (the retention policy in force is "retention"). */
  readonly settings: RecordStore;
  /** How many members of batch `id` are now Succeeded, Failed and Deleted. */
  batchCounts(id: string): Promise<BatchCounts>;

  /**
   * Recomputes every projection (records, indexes, counters, time buckets, leases, unique key
   * holders) from the event logs, using `derive` (lib's fold). Each unique key goes to the job
   * with that key (`options.unique.key`) created last (by `createdAt`, then id), since every
   * claim is made by a create. Returns how many jobs were rebuilt.
   */
  rebuild(derive: Derive): Promise<RebuildResult>;
  /** Drops time buckets older than their retention. */
  prune(now: number): Promise<void>;
  /** Releases the backend's resources. */
  close(): Promise<void>;
}

/** What a rebuild did: jobs rebuilt, and jobs whose logs could not be folded (left out). */
export interface RebuildResult {
  /** Jobs whose projections were rebuilt. */
  jobs: number;
  /** Ids whose event logs are broken (a gap, a forbidden transition): nothing to rebuild from. */
  skipped: string[];
}

/** Lib's fold, handed to {@link Storage.rebuild} so that storage never imports lib's logic. */
export type Derive = (
  id: string,
  events: JobEvent[],
) => { record: JobRecord; lease: Lease | null } | null;
