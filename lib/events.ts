/**
 * @module
 * The events a job's log is made of. Events are facts in the past tense; each has a sequence
 * number (1, 2, 3, ... per job) and a time. The job record is their fold.
 */

import type { Json } from "./payload.ts";
import type { JobKeep } from "./retention/keep.ts";
import type { State } from "./states.ts";

/** How a continuation waits on its parent: only its success, or any end state. */
export type ContinueOn = "succeeded" | "finished";

/** A retry delay rule that can be stored with the job. */
export type BackoffSpec =
  | "exponential"
  | "fixed"
  | { readonly type: "exponential" | "fixed"; readonly delayMs: number };

/** Options stored with a job when it is created (absent ones come from the worker's definition). */
export interface StoredOptions {
  /** Total attempts allowed, first run included. */
  attempts?: number;
  /** Delay rule between attempts. */
  backoff?: BackoffSpec;
  /** Abort the handler's signal and fail the attempt after this many milliseconds. */
  timeoutMs?: number;
  /** The job's own retention, overriding the policy in force (see `JobKeep`). */
  keep?: JobKeep;
  /** The partition key the queue's `partition` limits apply to (e.g. a tenant id). */
  partition?: string;
  /** The job's unique key, and while it holds it (see `UniqueOptions`). */
  unique?: StoredUnique;
  /** A debounced job: how far each enqueue of its key postpones it, and at most how far. */
  debounce?: StoredDebounce;
  /** Not started by this time (ms since epoch), the job never runs: it is Deleted, "expired". */
  expiresAt?: number;
  /** A job with dependencies: what a dependency that ends Failed or Deleted does to it. */
  onDependencyFailure?: DependencyFailure;
  /** A scheduled job with dependencies: released to Scheduled for this time (ms since epoch). */
  runAt?: number;
}

/**
 * What a job does when one of its dependencies ends Failed or Deleted: `"fail"` (it ends
 * Failed, naming the dependency), `"delete"` (it ends Deleted), or `"run"` (it runs anyway once
 * every dependency is final).
 */
export type DependencyFailure = "fail" | "delete" | "run";

/** A debounced job's timing (its key is stored as `unique.key`, held while Scheduled). */
export interface StoredDebounce {
  /** The job runs this many ms after the last enqueue of its key. */
  delayMs: number;
  /** ...but no later than this many ms after the first one (its creation). */
  maxWaitMs?: number;
}

/** A unique job's key as stored in its created event (`rebuild` recomputes key holders from it). */
export interface StoredUnique {
  /** The key: at most one job holds it at a time. */
  key: string;
  /** The job also holds the key until this many ms after it was created, whatever its state. */
  ttlMs?: number;
  /** States in which the job holds its key, when not Scheduled, Enqueued, Awaiting, Processing. */
  states?: State[];
}

/** What failed, as stored with a failed attempt. */
export interface ErrorInfo {
  /** The error's class name, e.g. `TypeError`. */
  name: string;
  /** The error's message. */
  message: string;
  /** The error's code, when it has one (e.g. a {@link TaskFlowError}'s code). */
  code?: string;
  /** The stack trace, when available. */
  stack?: string;
}

/** Extra facts recorded with a state event; which fields appear depends on the state. */
export interface StateData {
  /** Scheduled: when the job becomes due. */
  runAt?: number;
  /** Scheduled: the attempt that failed and is being retried. */
  retryOf?: number;
  /** Processing: the server that claimed the job. */
  serverId?: string;
  /** Processing: the lease granted at claim time (heartbeats extend it outside the log). */
  leaseUntil?: number;
  /** Succeeded: the handler's return value. */
  result?: Json;
  /** Succeeded/Failed/retry: how long the attempt ran. */
  durationMs?: number;
  /** Failed, or Scheduled as a retry: the error of the attempt. */
  error?: ErrorInfo;
  /** Enqueued by an operator: the attempt counter starts again. */
  resetAttempts?: boolean;
  /** Scheduled by the handler's snooze: the attempt that ran is not counted. */
  snoozed?: boolean;
  /** Enqueued by a stopping worker before the handler started: the claim is not counted. */
  unstarted?: boolean;
}

/** The first event of every job. */
export interface CreatedEvent {
  /** Event kind discriminator. */
  type: "created";
  /** Position in the job's log, 1 for the first event. */
  seq: number;
  /** When the event happened (ms since epoch). */
  at: number;
  /** The job's name, which selects its handler. */
  name: string;
  /** The queue the job belongs to. */
  queue: string;
  /** The arguments passed to the handler. */
  args: Json;
  /** Higher runs first within its queue. */
  priority: number;
  /** Options stored with the job. */
  options: StoredOptions;
  /** For batch members: the batch. */
  batchId?: string;
  /** For continuations: the parent job's id. */
  parentId?: string;
  /** For continuations: the condition on the parent that releases this job. */
  on?: ContinueOn;
  /** Jobs this job waits for (`dependsOn`). */
  dependsOn?: string[];
  /** Jobs created waiting for this one (the other nodes of its flow). */
  dependents?: string[];
  /** For flow nodes: the flow (its root's id). */
  flowId?: string;
  /** A flow node created staged: not released until its whole flow is written. */
  staged?: true;
  /** The W3C `traceparent` of the span that created the job (absent when none was active). */
  traceparent?: string;
  /** The W3C `tracestate` that came with {@link CreatedEvent.traceparent}, when not empty. */
  tracestate?: string;
}

/** The job entered `state`. */
export interface StateEvent {
  /** Event kind discriminator. */
  type: "state";
  /** Position in the job's log, 1 for the first event. */
  seq: number;
  /** When the event happened (ms since epoch). */
  at: number;
  /** The state the job entered. */
  state: State;
  /** Why the job entered the state, when a reason was given. */
  reason?: string;
  /** Extra facts that depend on the state. */
  data?: StateData;
}

/** The handler reported progress. */
export interface ProgressEvent {
  /** Event kind discriminator. */
  type: "progress";
  /** Position in the job's log, 1 for the first event. */
  seq: number;
  /** When the event happened (ms since epoch). */
  at: number;
  /** The progress reported (a number, typically 0–100). */
  value: number;
}

/** The handler wrote a log line. */
export interface LogEvent {
  /** Event kind discriminator. */
  type: "log";
  /** Position in the job's log, 1 for the first event. */
  seq: number;
  /** When the event happened (ms since epoch). */
  at: number;
  /** The log line. */
  message: string;
}

/** A continuation was attached to this job. */
export interface ContinuationAddedEvent {
  /** Event kind discriminator. */
  type: "continuation";
  /** Position in the job's log, 1 for the first event. */
  seq: number;
  /** When the event happened (ms since epoch). */
  at: number;
  /** The id of the continuation job. */
  childId: string;
  /** The condition on this job that releases the continuation. */
  on: ContinueOn;
}

/** A job was created waiting for this one (`dependsOn`). */
export interface DependentAddedEvent {
  /** Event kind discriminator. */
  type: "dependent";
  /** Position in the job's log, 1 for the first event. */
  seq: number;
  /** When the event happened (ms since epoch). */
  at: number;
  /** The id of the job that waits. */
  childId: string;
}

/**
 * A dependency of this job entered `state`: into a final state it counts as done (the pending
 * count goes down), out of one (requeued) it counts as pending again.
 */
export interface DependencyEvent {
  /** Event kind discriminator. */
  type: "dependency";
  /** Position in the job's log, 1 for the first event. */
  seq: number;
  /** When the event happened (ms since epoch). */
  at: number;
  /** The dependency's id. */
  id: string;
  /** The state the dependency entered. */
  state: State;
}

/** The flow this staged job belongs to is written whole: it may be released. */
export interface UnstagedEvent {
  /** Event kind discriminator. */
  type: "unstaged";
  /** Position in the job's log, 1 for the first event. */
  seq: number;
  /** When the event happened (ms since epoch). */
  at: number;
}

/** An enqueue of this job's unique key was absorbed by this job: it created nothing. */
export interface DeduplicatedEvent {
  /** Event kind discriminator. */
  type: "deduplicated";
  /** Position in the job's log, 1 for the first event. */
  seq: number;
  /** When the event happened (ms since epoch). */
  at: number;
}

/** An enqueue of this debounced job's key postponed it and replaced its arguments. */
export interface DebouncedEvent {
  /** Event kind discriminator. */
  type: "debounced";
  /** Position in the job's log, 1 for the first event. */
  seq: number;
  /** When the event happened (ms since epoch). */
  at: number;
  /** The arguments of that enqueue, which the job now runs with. */
  args: Json;
  /** When the job is now due. */
  runAt: number;
}

/** Any event of a job's log. */
export type JobEvent =
  | CreatedEvent
  | StateEvent
  | ProgressEvent
  | LogEvent
  | ContinuationAddedEvent
  | DeduplicatedEvent
  | DebouncedEvent
  | DependentAddedEvent
  | DependencyEvent
  | UnstagedEvent;

/** An event before it is given its sequence number. */
export type NewEvent =
  | Omit<CreatedEvent, "seq">
  | Omit<StateEvent, "seq">
  | Omit<ProgressEvent, "seq">
  | Omit<LogEvent, "seq">
  | Omit<ContinuationAddedEvent, "seq">
  | Omit<DeduplicatedEvent, "seq">
  | Omit<DebouncedEvent, "seq">
  | Omit<DependentAddedEvent, "seq">
  | Omit<DependencyEvent, "seq">
  | Omit<UnstagedEvent, "seq">;
