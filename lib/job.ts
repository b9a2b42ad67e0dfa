/**
 * @module
 * Jobs: the stored record, job definitions (name + handler + defaults), ids and name rules.
 */

import type { BackoffSpec, ContinueOn, ErrorInfo, StoredOptions } from "./events.ts";
import { InvalidNameError, InvalidOptionError } from "../storage/errors.ts";
import { checkBackoff, guard, MAX_DELAY_MS, readOptions } from "./options.ts";
import type { Json } from "./payload.ts";
import { checkJobKeep, type JobKeep } from "./retention/keep.ts";
import { checkExpiresIn } from "./expiry.ts";
import { checkPartitionDefault, type PartitionFunction } from "./queues/partition.ts";
import type { State } from "./states.ts";

export { idCreatedAt, newJobId } from "./ids.ts";
import {
  type DebounceOptions,
  readDebounce,
  readUnique,
  type UniqueOptions,
} from "./unique/options.ts";

/** A continuation attached to a job. */
export interface ContinuationRef {
  /** The continuation job's id. */
  id: string;
  /** The condition on this job that releases the continuation. */
  on: ContinueOn;
}

/**
 * The current state of a job: the fold of its event log, kept as a projection by storage.
 * `version` is the sequence number of the last event folded in.
 */
export interface JobRecord {
  /** The job's id. */
  id: string;
  /** The job's name, which selects its handler. */
  name: string;
  /** The queue the job belongs to. */
  queue: string;
  /** The arguments passed to the handler. */
  args: Json;
  /** Higher runs first within its queue. */
  priority: number;
  /** Options stored with the job at creation. */
  options: StoredOptions;
  /** The job's current state. */
  state: State;
  /** When the job entered its current state (ms since epoch). */
  stateAt: number;
  /** Why it entered its current state, when a reason was given. */
  reason?: string;
  /** When the job was created (ms since epoch). */
  createdAt: number;
  /** Sequence number of the last event folded in. */
  version: number;
  /** Attempts started since creation or the last manual requeue. */
  attempt: number;
  /** Scheduled: when it becomes due. */
  runAt?: number;
  /** Scheduled as a retry: the attempt that failed. */
  retryOf?: number;
  /** Processing (and after): the server that ran the last attempt. */
  serverId?: string;
  /** When the last attempt started. */
  startedAt?: number;
  /** Succeeded: the handler's return value. */
  result?: Json;
  /** Duration of the last finished attempt. */
  durationMs?: number;
  /** The error of the last failed attempt. */
  error?: ErrorInfo;
  /** Last progress reported by the handler. */
  progress?: number;
  /** Continuation: the id of the job it waits for. */
  parentId?: string;
  /** Continuation: the condition on the parent that releases it. */
  on?: ContinueOn;
  /** Jobs waiting for this one. */
  continuations: ContinuationRef[];
  /** The batch this job belongs to. */
  batchId?: string;
  /** Jobs this job waits for (`enqueue(..., { dependsOn })`). */
  dependsOn?: string[];
  /** Of `dependsOn`, how many are not in a final state (as counted by its `dependency` events). */
  pending?: number;
  /** The first dependency that ended Failed or Deleted, while it stays so. */
  failedDependency?: { id: string; state: State };
  /** Jobs waiting for this one through their `dependsOn`. */
  dependents?: string[];
  /** The flow this job is a node of (its root's id). */
  flowId?: string;
  /** A flow node whose flow is still being written: never released until it is unstaged. */
  staged?: boolean;
  /** The job's own retention (from its created event), overriding the policy in force. */
  keep?: JobKeep;
  /** Enqueues of its unique key this job absorbed (its `deduplicated` events). */
  deduplicated?: number;
  /** Enqueues of its debounce key that postponed this job (its `debounced` events). */
  debounced?: number;
  /** The W3C `traceparent` of the span that created the job: each attempt's span follows it. */
  traceparent?: string;
  /** The W3C `tracestate` stored with {@link JobRecord.traceparent}. */
  tracestate?: string;
}

/** What a handler receives besides its arguments. */
export interface JobContext {
  /** The job's id. */
  jobId: string;
  /** The job's name. */
  name: string;
  /** 1 for the first run, 2 for the first retry, ... */
  attempt: number;
  /** Fires on timeout, on delete of the job, and when the worker shuts down. */
  signal: AbortSignal;
  /** Records progress (a number, typically 0–100); shown on the dashboard. */
  progress(value: number): Promise<void>;
  /** Appends a line to the job's log. */
  log(message: string): Promise<void>;
  /** Throws a `SnoozeError` (don't catch it): Scheduled again in `ms`, no attempt spent. */
  snooze(ms: number): never;
  /**
   * The state, result and error of each of the job's dependencies (`dependsOn`, a flow node's
   * children), by id; empty for a job without any.
   */
  dependencies(): Promise<Record<string, DependencyOutcome>>;
  /**
   * Deno KV only: adds `fn`'s checks and writes (`op.check`, `op.set`, `op.sum`, ...) to the
   * atomic write that records this job Succeeded: they commit together or not at all, fenced
   * by the job's version, so a crash or a rerun never applies them twice. `fn` runs at once
   * (it is recorded and replayed); a failed check of its fails the attempt
   * (`ATOMIC_CHECK_FAILED`, retried). Elsewhere it throws `UnsupportedError`.
   */
  atomic(fn: (op: Deno.AtomicOperation) => void): void;
}

/** A dependency as its dependent sees it (see {@link JobContext.dependencies}). */
export interface DependencyOutcome {
  /** Its current state. */
  state: State;
  /** Succeeded: its handler's return value. */
  result?: Json;
  /** Its last error, when it failed. */
  error?: ErrorInfo;
}

/** A job handler: receives the arguments and a context; its return value is the job's result. */
// deno-lint-ignore no-explicit-any
export type Handler<A = any, R = unknown> = (args: A, ctx: JobContext) => R | Promise<R>;

/** Computes a retry delay in ms from the attempt that failed (1-based) and its error. */
export type BackoffFunction = (attempt: number, error: unknown) => number;

/** Per-job defaults, overridable per enqueue. */
export interface JobDefaults {
  /** Queue the job goes to (default `"default"`). */
  queue?: string;
  /** Higher runs first within a queue (default 0, range −1000..1000). */
  priority?: number;
  /** Total attempts, first run included (default 10). */
  attempts?: number;
  /** `"exponential"` (Hangfire's curve), `"fixed"`, `{ type, delayMs }`, or a function. */
  backoff?: BackoffSpec | BackoffFunction;
  /** Abort the handler and fail the attempt after this many ms. */
  timeoutMs?: number;
  /** How long the job is kept once finished, overriding the retention policy (see {@link JobKeep}). */
  keep?: JobKeep;
  /** The partition key (e.g. a tenant id), or in `defineJob` a function of the arguments giving it. */
  partition?: string | PartitionFunction;
  /** At most one pending job per key (see {@link UniqueOptions}); in `defineJob` the key may be a function of the arguments. */
  unique?: UniqueOptions;
  /** Run once, `delayMs` after the last enqueue with the key (see {@link DebounceOptions}). */
  debounce?: DebounceOptions;
  /** Not started within this many ms of its enqueue, the job never runs (Deleted, "expired"). */
  expiresInMs?: number;
}

/** A named job with its handler and defaults, created by {@link defineJob}. */
export interface JobDefinition<A = unknown, R = unknown> {
  /** The job's name, used to enqueue it and to find its handler. */
  readonly name: string;
  /** The function a worker runs for each job of this name. */
  readonly handler: Handler<A, R>;
  /** Defaults applied to each enqueue of this job. */
  readonly defaults: Readonly<JobDefaults>;
  /** Run in a Web Worker (`true`), on the event loop (`false`), or as the worker says (absent). */
  readonly isolate?: boolean;
  /** URL of the module that defines this job, imported by a Web Worker to run it isolated. */
  readonly module?: string;
}

/** What only a definition takes besides its {@link JobDefaults}. */
export interface DefineOptions extends JobDefaults {
  /**
   * Run the handler in the worker's pool of Web Workers, so that computing never stalls the
   * worker's heartbeats (`false` keeps it on the event loop even when the worker isolates all).
   */
  isolate?: boolean;
  /**
   * The URL of the module whose top level defines this job (pass `import.meta.url`): a Web Worker
   * imports it and runs the handler of the job of this name defined there. Needed to isolate.
   */
  module?: string | URL;
}

/** Global hook a Web Worker sets to collect the definitions a module makes as it loads (shared
 * by every copy of this file, so that a module importing TaskFlow by another URL is seen too). */
export const DEFINED_HOOK: unique symbol = Symbol.for("taskflow.isolate.defined");

/** Default queue name. */
export const DEFAULT_QUEUE = "default";
/** Default number of attempts (first run included), as in Hangfire. */
export const DEFAULT_ATTEMPTS = 10;

const JOB_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:\/-]{0,127}$/;
const QUEUE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const JOB_ID = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;

/** Throws {@link InvalidNameError} unless `name` is a valid job name. */
export function checkJobName(name: unknown): string {
  if (typeof name !== "string" || !JOB_NAME.test(name)) {
    throw new InvalidNameError(
      "job name",
      name,
      "1–128 characters of letters, digits and _ . : / -, not starting with punctuation other than _",
    );
  }
  return name;
}

/** Throws {@link InvalidNameError} unless `name` is a valid queue name. */
export function checkQueueName(name: unknown): string {
  if (typeof name !== "string" || !QUEUE_NAME.test(name)) {
    throw new InvalidNameError(
      "queue name",
      name,
      "1–64 characters of letters, digits and _ . -, not starting with . or -",
    );
  }
  return name;
}

/** True when `id` has the shape of a job id. */
export function isJobId(id: unknown): id is string {
  return typeof id === "string" && JOB_ID.test(id);
}

/** Throws {@link InvalidNameError} unless `id` is a valid job id. */
export function checkJobId(id: unknown): string {
  if (!isJobId(id)) {
    throw new InvalidNameError(
      "job id",
      id,
      "1–128 characters of letters, digits and _ . : -, not starting with punctuation other than _",
    );
  }
  return id;
}

/** The options every enqueue-like call takes (and a job definition's defaults). */
export const JOB_OPTIONS = [
  "queue",
  "priority",
  "attempts",
  "backoff",
  "timeoutMs",
  "keep",
  "partition",
  "unique",
  "debounce",
  "expiresInMs",
] as const;

/** Validates job defaults / options shared by definitions and enqueue calls. */
export function checkDefaults(options: JobDefaults, where = "options"): void {
  if (options.queue !== undefined) checkQueueName(options.queue);
  const { priority, attempts, timeoutMs, backoff } = options;
  if (priority !== undefined && !(Number.isInteger(priority) && Math.abs(priority) <= 1000)) {
    throw new InvalidOptionError(
      `${where}.priority`,
      priority,
      "must be an integer from -1000 to 1000",
    );
  }
  if (
    attempts !== undefined && !(Number.isInteger(attempts) && attempts >= 1 && attempts <= 1000)
  ) {
    throw new InvalidOptionError(
      `${where}.attempts`,
      attempts,
      "must be an integer from 1 to 1000",
    );
  }
  if (
    timeoutMs !== undefined &&
    !(typeof timeoutMs === "number" && timeoutMs > 0 && timeoutMs <= MAX_DELAY_MS)
  ) {
    throw new InvalidOptionError(
      `${where}.timeoutMs`,
      timeoutMs,
      `must be a positive number of ms, at most ${MAX_DELAY_MS} (10 years)`,
    );
  }
  if (backoff !== undefined && typeof backoff !== "function") checkBackoff(backoff, where);
  if (options.expiresInMs !== undefined) {
    checkExpiresIn(options.expiresInMs, `${where}.expiresInMs`);
  }
  if (options.partition !== undefined) {
    checkPartitionDefault(options.partition, `${where}.partition`);
  }
}

/**
 * Reads a job definition's defaults (or an enqueue's job options) into a checked snapshot;
 * `extra` are further keys the call takes, copied unchecked for the caller to check.
 */
export function readJobOptions(
  value: unknown,
  how: { call: string; where?: string; extra?: readonly string[] },
): JobDefaults & Record<string, unknown> {
  const { call, where = "options", extra = [] } = how;
  const options = readOptions(value, { call, where, allowed: [...JOB_OPTIONS, ...extra] });
  if (typeof options.backoff === "object" && options.backoff !== null) {
    // A snapshot, so that what was checked is what is stored.
    const backoff = options.backoff as object;
    options.backoff = guard(`${where}.backoff`, () => ({ ...backoff }));
  }
  // A checked copy, so that what was checked is what is stored.
  if (options.keep !== undefined) options.keep = checkJobKeep(options.keep, `${where}.keep`);
  if (options.unique !== undefined) {
    options.unique = readUnique(options.unique, `${where}.unique`, call === "defineJob");
  }
  if (options.debounce !== undefined) {
    options.debounce = readDebounce(options.debounce, `${where}.debounce`, call === "defineJob");
  }
  checkDefaults(options as JobDefaults, where);
  return options as JobDefaults & Record<string, unknown>;
}

/** The name and defaults of a job reference (a definition or a name), read once. */
export function jobOf(job: unknown): { name: string; defaults: Readonly<JobDefaults> } {
  return guard("job", () => {
    if (typeof job === "object" && job !== null && isJobDefinition(job)) {
      const defaults = job.defaults;
      return { name: checkJobName(job.name), defaults: defaults ?? {} };
    }
    return { name: checkJobName(job), defaults: {} };
  });
}

/**
 * Defines a job: a name that producers use to enqueue it, the handler a worker runs, and
 * defaults (queue, attempts, backoff, timeout, priority). With `isolate: true` and
 * `module: import.meta.url`, a worker runs the handler in a Web Worker that imports `module`.
 *
 * @example
 * ```ts
 * import { defineJob } from "./mod.ts";
 * export const resize = defineJob("image.resize", (args: { id: string }) => {
 *   return { id: args.id }; // CPU-heavy work here does not stall the worker's heartbeats
 * }, { isolate: true, module: import.meta.url });
 * ```
 */
export function defineJob<A, R>(
  name: string,
  handler: Handler<A, R>,
  defaults: DefineOptions = {},
): JobDefinition<A, R> {
  checkJobName(name);
  if (typeof handler !== "function") {
    throw new InvalidOptionError("handler", typeof handler, "must be a function");
  }
  const checked = readJobOptions(defaults, {
    call: "defineJob",
    where: "defaults",
    extra: ["isolate", "module"],
  });
  const { isolate, module, ...jobDefaults } = checked;
  if (isolate !== undefined && typeof isolate !== "boolean") {
    throw new InvalidOptionError("defaults.isolate", isolate, "must be true or false");
  }
  const url = module === undefined ? undefined : moduleUrl(module, "defaults.module");
  if (isolate === true && url === undefined) {
    throw new InvalidOptionError(
      "defaults.module",
      undefined,
      `job "${name}" is isolated, so a Web Worker must import the module defining it: ` +
        "pass module: import.meta.url",
    );
  }
  const definition: JobDefinition<A, R> = Object.freeze({
    name,
    handler,
    defaults: Object.freeze(jobDefaults),
    ...(isolate === undefined ? {} : { isolate }),
    ...(url === undefined ? {} : { module: url }),
  });
  const collect = (globalThis as Record<symbol, unknown>)[DEFINED_HOOK];
  if (typeof collect === "function") collect(definition);
  return definition;
}

/** An absolute module URL (`import.meta.url`, `https:`, `file:`), else {@link InvalidOptionError}. */
export function moduleUrl(value: unknown, option: string): string {
  const text = value instanceof URL ? value.href : value;
  if (typeof text === "string" && URL.canParse(text)) return new URL(text).href;
  throw new InvalidOptionError(
    option,
    text,
    "must be an absolute module URL such as import.meta.url",
  );
}

/** True when `value` looks like a {@link JobDefinition}. */
export function isJobDefinition(value: unknown): value is JobDefinition {
  return typeof value === "object" && value !== null &&
    typeof (value as JobDefinition).name === "string" &&
    typeof (value as JobDefinition).handler === "function" &&
    typeof (value as JobDefinition).defaults === "object";
}
