/**
 * @module
 * TaskFlow's public API: define jobs, open a storage, enqueue and operate jobs.
 *
 * @example
 * ```ts
 * import { defineJob, TaskFlow } from "./mod.ts";
 * const sendEmail = defineJob("email.send", (args: { to: string }) => ({ sent: args.to }), {
 *   queue: "mail",
 *   attempts: 5,
 * });
 * const tf = await TaskFlow.open("kv::memory:");
 * const id = await tf.enqueue(sendEmail, { to: "a@example.com" });
 * await tf.schedule(sendEmail, { to: "b@example.com" }, { delayMs: 60_000 });
 * await tf.continueWith(id, "email.send", { to: "ops@example.com" }, { on: "finished" });
 * await tf.close();
 * ```
 */

export { TaskFlow, type TaskFlowOptions } from "./client.ts";
export { ClientReads } from "./client_reads.ts";
export { MAX_BATCH } from "./batch.ts";
export {
  type ContinueOptions,
  type EnqueueItem,
  type EnqueueOptions,
  type JobRef,
  type JobWriter,
  MAX_CONTINUATIONS,
  type ScheduleOptions,
} from "./create.ts";
export { WAIT_POLL_MS, type WaitOptions } from "./watch/wait.ts";
export type { WatchedEvent, WatchOptions } from "./watch/watch.ts";
export type { ExplainReads, Explanation, Reason } from "./explain/explain.ts";
export {
  AtomicCheckError,
  CursorExpiredError,
  JobDeletedError,
  JobFailedError,
  UnsupportedError,
  WaitTimeoutError,
} from "../storage/event_errors.ts";
export type { AtomicExtra, EventFeed, FeedEntry, FeedQuery, FeedRef } from "../storage/feed.ts";
export {
  ArgsNotSerializableError,
  AttemptsExhaustedError,
  ConflictError,
  CorruptRecordError,
  DependencyFailedError,
  DependencyNotFoundError,
  DiscardError,
  type ErrorCode,
  InvalidCronError,
  InvalidNameError,
  InvalidOptionError,
  InvalidTimezoneError,
  InvalidTransitionError,
  JobExistsError,
  JobModuleError,
  JobNotFoundError,
  JobTimeoutError,
  PayloadTooLargeError,
  SnoozeError,
  StorageUnavailableError,
  TaskFlowError,
  TransactionNotSupportedError,
  UnknownJobError,
  UnknownStorageError,
} from "../storage/errors.ts";
export type {
  BackoffSpec,
  ContinuationAddedEvent,
  ContinueOn,
  CreatedEvent,
  DebouncedEvent,
  DeduplicatedEvent,
  DependencyEvent,
  DependencyFailure,
  DependentAddedEvent,
  ErrorInfo,
  JobEvent,
  LogEvent,
  ProgressEvent,
  StateData,
  StateEvent,
  StoredDebounce,
  StoredOptions,
  StoredUnique,
  UnstagedEvent,
} from "./events.ts";
export {
  type DebounceOptions,
  MAX_UNIQUE_KEY_LENGTH,
  UNIQUE_STATES,
  type UniqueKeyFunction,
  type UniqueOptions,
} from "./unique/options.ts";
export {
  type BackoffFunction,
  type ContinuationRef,
  DEFAULT_ATTEMPTS,
  DEFAULT_QUEUE,
  defineJob,
  type DefineOptions,
  type DependencyOutcome,
  type Handler,
  type JobContext,
  type JobDefaults,
  type JobDefinition,
  type JobRecord,
} from "./job.ts";
export type { Json } from "./payload.ts";
export { fold, type Lease, project } from "./projection.ts";
export { rebuild, type RebuildReport } from "./rebuild.ts";
export {
  type BrokenDefinition,
  dueOccurrences,
  type Misfire,
  nextOccurrence,
  type Occurrence,
  occurrenceId,
  RecurringApi,
  type RecurringError,
  type RecurringJob,
  type RecurringOptions,
  scheduleRecurring,
} from "./recurring.ts";
export {
  createWorker,
  type LogFields,
  Worker,
  type WorkerLogger,
  type WorkerOptions,
  type WorkerStats,
} from "./worker/worker.ts";
export { hangfireDelay, retryDelay } from "./worker/retry.ts";
export type {
  AttemptContext,
  AttemptMiddleware,
  CreateCall,
  CreateContext,
  CreateJob,
  CreateMiddleware,
} from "./middleware/mod.ts";
export { createLogger, LOG_FORMATS, type LogFormat, type LoggerOptions } from "./log/logger.ts";
export { METRIC_NAMES } from "./telemetry/metrics.ts";
export type { TraceLink } from "./telemetry/trace.ts";
export type { AttemptOutcome } from "./worker/observe.ts";
export {
  type ArchivedJob,
  DEFAULT_RETENTION,
  type EffectiveRule,
  effectiveRule,
  type JobKeep,
  type JobKeepRule,
  type Keep,
  type PruneOptions,
  type PruneReport,
  type ResolvedRetention,
  type RetentionPolicy,
  type StoredRetention,
} from "./retention/mod.ts";
export {
  type Admission,
  type Choice,
  type LimitedJob,
  type LimiterState,
  type LimiterUse,
  type LimitUse,
  type PartitionFunction,
  type PartitionLimits,
  type QueueConfig,
  type QueueConfigUpdate,
  QueuesApi,
  type QueueSettings,
  type RateLimit,
  type RateSlot,
  type RateWindow,
  type WaitReason,
} from "./queues/mod.ts";
export { MAX_DELAY_MS } from "./options.ts";
export {
  type Action,
  ACTIONS,
  allowedActions,
  canTransition,
  type State,
  STATES,
  TRANSITIONS,
} from "./states.ts";
export { defaultStorageUrl, openStorage, type OpenStorageOptions } from "../storage/open.ts";
export { redact } from "../storage/redact.ts";
export { VERSION } from "./version.ts";
export { RESOLUTIONS } from "../storage/storage.ts";
export { DURATION_BUCKETS_MS, zeroStates } from "../storage/effects.ts";
export { WAIT_BUCKETS_MS } from "../storage/stats.ts";
export type { StatField, StatPoint, StatQuery, StatResolution } from "../storage/stats.ts";
export {
  type Histogram,
  type JobStats,
  quantile,
  STAT_WINDOWS,
  type StatTotals,
  type StatWindow,
  type WaitPoint,
} from "./stats.ts";
export {
  type BatchRecord,
  type BatchStatus,
  batchStatus,
  memberId,
  settleBatch,
  thenId,
} from "./batch.ts";
export {
  FLOW_STAGED,
  type FlowIds,
  type FlowNode,
  type FlowRecord,
  MAX_FLOW,
} from "./workflows/flow.ts";
export type { FlowStatus } from "./workflows/status.ts";
export { MAX_DEPENDENCIES } from "./workflows/depend.ts";
export type {
  AppendResult,
  BatchCounts,
  Cap,
  Change,
  ClaimBuilder,
  ClaimQuery,
  ClaimResult,
  Commit,
  Counts,
  Derive,
  FinishedQuery,
  Heartbeat,
  HeldLease,
  LeasePage,
  Limits,
  ListQuery,
  Notifier,
  Page,
  RebuildResult,
  RecordStore,
  RecurringRecord,
  Removal,
  RemoveResult,
  Resolution,
  SearchQuery,
  ServerInfo,
  Storage,
  TimelinePoint,
  UniqueClaim,
} from "../storage/storage.ts";
export {
  isOrphaned,
  leaseText,
  type LivenessReader,
  type LiveServers,
  liveServers,
  type Orphan,
  orphanOf,
  orphanText,
  readOrphans,
} from "./liveness.ts";
