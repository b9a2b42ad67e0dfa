/**
 * @module
 * A worker's options, resolved once into a read-only config with every default filled in.
 */

import type { Storage } from "../../storage/storage.ts";
import { InvalidOptionError } from "../../storage/errors.ts";
import { systemClock } from "../clock.ts";
import {
  checkQueueName,
  DEFAULT_QUEUE,
  DEFINED_HOOK,
  isJobDefinition,
  type JobDefinition,
  moduleUrl,
} from "../job.ts";
import {
  checkDuration,
  checkFunctions,
  checkText,
  guard,
  MAX_TIMER_MS,
  readOptions,
} from "../options.ts";
import { type AttemptMiddleware, readMiddleware } from "../middleware/mod.ts";
import type { TraceLink } from "../telemetry/trace.ts";
import {
  readRetention,
  type ResolvedRetention,
  type RetentionPolicy,
} from "../retention/policy.ts";

const WORKER_OPTIONS = [
  "storage",
  "url",
  "jobs",
  "queues",
  "concurrency",
  "pollIntervalMs",
  "minPollIntervalMs",
  "heartbeatMs",
  "shutdownTimeoutMs",
  "notifier",
  "recurring",
  "handleSignals",
  "id",
  "now",
  "random",
  "monotonic",
  "logger",
  "retention",
  "pruneIntervalMs",
  "isolate",
  "isolateWorkers",
  "isolateModule",
  "middleware",
  "traceContext",
] as const satisfies readonly (keyof WorkerOptions)[];
// Compile-time check: an option added to WorkerOptions but not to this list fails `deno check`.
const _everyOption: [Exclude<keyof WorkerOptions, typeof WORKER_OPTIONS[number]>] extends [never]
  ? true
  : never = true;

/** Facts a worker's message is about, where it knows them (the JSON log format prints them). */
export interface LogFields {
  /** The job the message is about. */
  jobId?: string;
}

/**
 * Messages a worker reports (errors of storage, fenced results, ...); `fields` name the job
 * when the message is about one.
 */
export type WorkerLogger = (
  level: "info" | "warn" | "error",
  message: string,
  fields?: LogFields,
) => void;

/** Options of {@link createWorker}. */
export interface WorkerOptions {
  /** An open storage, or `url` to open one (closed again by `stop()`). */
  storage?: Storage;
  /** Storage URL, used when `storage` is absent (default: see `defaultStorageUrl`). */
  url?: string;
  /** The jobs this worker can run: definitions, or a module namespace exporting them. */
  jobs: readonly JobDefinition<any, any>[] | Record<string, unknown>;
  /** Queues to take jobs from, in priority order (default `["default"]`). */
  queues?: string[];
  /** Most handlers running at once (default 10). */
  concurrency?: number;
  /** Longest wait between polls when idle, in ms (default 500). */
  pollIntervalMs?: number;
  /** Shortest wait between polls, reached when busy (default 25). */
  minPollIntervalMs?: number;
  /** Heartbeat period in ms (default 5,000); a server is dead after 3 missed beats. */
  heartbeatMs?: number;
  /** How long a shutdown waits for running handlers before aborting them (default 15,000). */
  shutdownTimeoutMs?: number;
  /** Use the storage's wake-ups (KV queue messages, ...) besides polling (default true). */
  notifier?: boolean;
  /** Enqueue due occurrences of recurring jobs (default true; every worker may, each runs once). */
  recurring?: boolean;
  /** Stop gracefully on SIGINT/SIGTERM (default false; the CLI turns it on). */
  handleSignals?: boolean;
  /** Server id (default: hostname, pid and a random suffix). */
  id?: string;
  /** Clock for event times, due times and leases (tests inject one). */
  now?: () => number;
  /** Random source for retry jitter and the pruning draw (tests inject one). */
  random?: () => number;
  /** Monotonic ms, for how long a lease stayed unchanged (default `performance.now`). */
  monotonic?: () => number;
  /** Where the worker reports (default: console). */
  logger?: WorkerLogger;
  /**
   * How long finished jobs are kept (default `DEFAULT_RETENTION`:
   * succeeded and deleted 24 h, failed 30 days; `false`: forever).
   * Stored at start as the policy in force for every worker and dashboard.
   */
  retention?: RetentionPolicy | false;
  /** How often this worker prunes, in ms (default 10,000). */
  pruneIntervalMs?: number;
  /**
   * Run every job's handler in a pool of Web Workers (default false: only jobs defined with
   * `isolate: true`; a job defined with `isolate: false` stays on the event loop).
   */
  isolate?: boolean;
  /** Web Workers in the pool (default: one per core, at most `concurrency`). */
  isolateWorkers?: number;
  /**
   * The module a Web Worker imports for an isolated job defined without `module` (a URL, or a
   * path from the working directory); the command line passes its `--jobs` module.
   */
  isolateModule?: string;
  /**
   * Wraps every attempt, the first outermost, on the worker's side of an isolated job too
   * (see {@link AttemptMiddleware}).
   */
  middleware?: AttemptMiddleware[];
  /**
   * How an attempt's span refers to the span that created its job: as its parent (`"parent"`,
   * the default: one trace from enqueue to the last attempt) or by a link (`"link"`: a trace
   * per attempt).
   */
  traceContext?: TraceLink;
}

/** Counters of what a worker did since it started. */
export interface WorkerStats {
  /** Handlers started. */
  started: number;
  /** Jobs that ended Succeeded. */
  succeeded: number;
  /** Attempts that ended in a retry. */
  retried: number;
  /** Jobs that ended Failed. */
  failed: number;
  /** Results discarded because the job changed under the worker (deleted, requeued, reaped). */
  fenced: number;
  /** Jobs of dead servers moved back to Enqueued. */
  reaped: number;
  /** Most handlers that ran at once. */
  peak: number;
}

/** {@link WorkerOptions} with every default applied; read-only once made. */
export interface WorkerConfig {
  /** This server's id. */
  readonly id: string;
  /** An open storage the caller owns, when one was given. */
  readonly storage?: Storage;
  /** Storage URL to open when no storage was given. */
  readonly url?: string;
  /** The runnable jobs by name. */
  readonly definitions: ReadonlyMap<string, JobDefinition>;
  /** Queues served, in priority order. */
  readonly queues: readonly string[];
  /** Most handlers running at once. */
  readonly concurrency: number;
  /** Longest wait between polls when idle. */
  readonly pollIntervalMs: number;
  /** Shortest wait between polls, and between reads of due jobs. */
  readonly minPollIntervalMs: number;
  /** Heartbeat period. */
  readonly heartbeatMs: number;
  /** Lease length: three heartbeats. */
  readonly leaseMs: number;
  /** How long a shutdown waits for running handlers. */
  readonly shutdownTimeoutMs: number;
  /** Listen to the storage's wake-ups. */
  readonly notifier: boolean;
  /** Run the recurring scheduler. */
  readonly recurring: boolean;
  /** Stop on SIGINT/SIGTERM. */
  readonly handleSignals: boolean;
  /** Clock for events, due times and leases. */
  readonly now: () => number;
  /** Random source for retry jitter and the pruning draw. */
  readonly random: () => number;
  /** Monotonic clock of the reaper: liveness is judged on it, never by comparing wall clocks. */
  readonly monotonic: () => number;
  /** Where the worker reports. */
  readonly log: WorkerLogger;
  /** The retention this worker stores as the policy in force. */
  readonly retention: ResolvedRetention;
  /** Receives each slice of jobs before it is pruned. */
  readonly archive?: RetentionPolicy["archive"];
  /** Pruning period. */
  readonly pruneIntervalMs: number;
  /** The module URL a Web Worker imports, for each job that runs isolated. */
  readonly isolated: ReadonlyMap<string, string>;
  /** Web Workers in the isolate pool. */
  readonly isolateWorkers: number;
  /** The attempt middleware, first outermost. */
  readonly middleware: readonly AttemptMiddleware[];
  /** How an attempt's span refers to its job's creating span. */
  readonly traceLink: TraceLink;
}

const defaultLogger: WorkerLogger = (level, message) => {
  (level === "info" ? console.log : console.error)(`[taskflow ${level}] ${message}`);
};

/** Validates `options` and fills in every default (throws {@link InvalidOptionError}). */
export function resolveConfig(input: WorkerOptions): WorkerConfig {
  if (typeof (globalThis as Record<symbol, unknown>)[DEFINED_HOOK] === "function") {
    // The module was imported by a Web Worker of the isolate pool, which would start workers
    // of its own, each with a pool of its own.
    throw new InvalidOptionError(
      "createWorker",
      "(in a Web Worker of the isolate pool)",
      "a module that isolated jobs name must not create a worker as it loads: create it " +
        "behind if (import.meta.main) or in another module",
    );
  }
  const options = readOptions(input, { call: "createWorker", allowed: WORKER_OPTIONS }) as
    & WorkerOptions
    & Record<string, unknown>;
  const concurrency = options.concurrency ?? 10;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
    throw new InvalidOptionError(
      "concurrency",
      concurrency,
      "must be an integer from 1 to 10000",
    );
  }
  const queues = guard("queues", () => Array.isArray(options.queues) ? [...options.queues] : null);
  if (options.queues !== undefined && (!queues || queues.length === 0)) {
    throw new InvalidOptionError("queues", options.queues, "must list at least one queue");
  }
  for (const queue of queues ?? []) checkQueueName(queue);
  // Each period is one timer, and a timer cannot wait longer than 2^31−1 ms.
  const timer = { max: MAX_TIMER_MS, what: `${MAX_TIMER_MS} (about 24.8 days)` };
  for (
    const [name, min] of [
      ["heartbeatMs", 1],
      ["pollIntervalMs", 0],
      ["minPollIntervalMs", 0],
      ["shutdownTimeoutMs", 0],
      ["pruneIntervalMs", 1],
    ] as const
  ) {
    if (options[name] !== undefined) checkDuration(options[name], name, { ...timer, min });
  }
  checkFunctions(options, ["now", "random", "monotonic", "logger"], {
    where: "options",
    optional: true,
  });
  if (options.id !== undefined) checkText(options.id, "id", 256);
  if (options.url !== undefined) checkText(options.url, "url", 4_096);
  if (options.storage !== undefined) {
    checkFunctions(options.storage, ["append", "get", "close"], { where: "storage" });
  }
  const definitions = new Map<string, JobDefinition>();
  const list = guard("jobs", () => {
    const jobs = options.jobs;
    if (jobs !== undefined && (typeof jobs !== "object" || jobs === null)) {
      throw new InvalidOptionError("jobs", jobs, "must list job definitions or be a module");
    }
    return Array.isArray(jobs) ? [...jobs] : Object.values(jobs ?? {});
  });
  for (const job of list) {
    if (guard("jobs", () => isJobDefinition(job))) definitions.set(job.name, job);
  }
  const heartbeatMs = options.heartbeatMs ?? 5_000;
  const { policy, archive } = readRetention(options.retention);
  const isolated = isolatedJobs(options, definitions);
  const isolateWorkers = options.isolateWorkers ??
    Math.min(navigator.hardwareConcurrency || 1, concurrency);
  if (!Number.isInteger(isolateWorkers) || isolateWorkers < 1 || isolateWorkers > 1_024) {
    throw new InvalidOptionError(
      "isolateWorkers",
      isolateWorkers,
      "must be an integer from 1 to 1024",
    );
  }
  const traceLink = options.traceContext ?? "parent";
  if (traceLink !== "parent" && traceLink !== "link") {
    throw new InvalidOptionError("traceContext", traceLink, 'must be "parent" or "link"');
  }
  return Object.freeze({
    middleware: readMiddleware<AttemptMiddleware>(options.middleware),
    traceLink,
    id: options.id ?? `${safeHostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`,
    storage: options.storage,
    url: options.url,
    definitions,
    queues: Object.freeze(queues ?? [DEFAULT_QUEUE]),
    concurrency,
    pollIntervalMs: options.pollIntervalMs ?? 500,
    minPollIntervalMs: options.minPollIntervalMs ?? 25,
    heartbeatMs,
    leaseMs: heartbeatMs * 3,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 15_000,
    notifier: options.notifier !== false,
    recurring: options.recurring !== false,
    handleSignals: Boolean(options.handleSignals),
    now: options.now ?? systemClock.now,
    random: options.random ?? systemClock.random,
    monotonic: options.monotonic ?? systemClock.monotonic,
    log: options.logger ?? defaultLogger,
    retention: Object.freeze(policy),
    archive,
    pruneIntervalMs: options.pruneIntervalMs ?? 10_000,
    isolated,
    isolateWorkers,
  });
}

/** Which jobs run in a Web Worker, and the module each one's Web Worker imports. */
function isolatedJobs(
  options: WorkerOptions,
  definitions: ReadonlyMap<string, JobDefinition>,
): Map<string, string> {
  const { isolate, isolateModule } = options;
  if (isolate !== undefined && typeof isolate !== "boolean") {
    throw new InvalidOptionError("isolate", isolate, "must be true or false");
  }
  const fallback = isolateModule === undefined ? undefined : moduleOf(isolateModule);
  const isolated = new Map<string, string>();
  for (const [name, definition] of definitions) {
    if (!(definition.isolate ?? isolate ?? false)) continue;
    const module = definition.module ?? fallback;
    if (module === undefined) {
      throw new InvalidOptionError(
        "jobs",
        name,
        "runs isolated but names no module for its Web Worker to import: define it with " +
          "{ module: import.meta.url } or give the worker isolateModule",
      );
    }
    isolated.set(name, module);
  }
  return isolated;
}

/** `isolateModule` as a URL: as given when it has a scheme, else a path from the working dir. */
function moduleOf(specifier: unknown): string {
  checkText(specifier, "isolateModule", 4_096);
  const text = specifier as string;
  if (/^[a-z][a-z0-9+.-]*:/i.test(text)) return moduleUrl(text, "isolateModule");
  return new URL(text, `file://${Deno.cwd().split("/").map(encodeURIComponent).join("/")}/`).href;
}

/** The host's name, or "unknown-host" where the runtime may not read it. */
export function safeHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown-host";
  }
}
