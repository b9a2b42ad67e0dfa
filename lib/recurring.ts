/**
 * @module
 * Recurring jobs: cron schedules (via croner) in IANA timezones, correct across DST changes.
 * Every server runs the scheduler; an occurrence is created once however many run, because its
 * job id is deterministic and the definition advances by compare-and-set.
 */

import type { RecurringRecord, Storage } from "../storage/storage.ts";
import {
  createJobs,
  type EnqueueOptions,
  type FirstState,
  type JobRef,
  type JobWriter,
  prepareJob,
} from "./create.ts";
import {
  ConflictError,
  CorruptRecordError,
  InvalidOptionError,
  JobExistsError,
  JobNotFoundError,
  StorageUnavailableError,
  TaskFlowError,
} from "../storage/errors.ts";
import { jobOf, readJobOptions } from "./job.ts";
import { errorText } from "./options.ts";
import {
  checkTimezone,
  dueOccurrences,
  type Misfire,
  nextOccurrence,
  occurrenceId,
  parseCron,
} from "./cron.ts";

export {
  checkTimezone,
  dueOccurrences,
  MAX_CATCH_UP,
  type Misfire,
  MISFIRE_GRACE_MS,
  nextOccurrence,
  occurrenceId,
  parseCron,
} from "./cron.ts";
import type { Json } from "./payload.ts";

/** One enqueued occurrence, kept in the definition's history. */
export interface Occurrence {
  /** The scheduled time of the occurrence (ms since epoch). */
  at: number;
  /** The job it created. */
  jobId: string;
  /** "schedule", or "trigger" for a manual run. */
  by: "schedule" | "trigger";
}

/** A stored recurring job definition. */
export interface RecurringJob extends RecurringRecord {
  /** Cron expression: 5 or 6 fields (seconds first), or an alias such as `@daily`. */
  cron: string;
  /** IANA timezone the expression is read in (default `UTC`). */
  timezone: string;
  /** Job name to enqueue. */
  name: string;
  /** Arguments of every occurrence. */
  args: Json;
  /** Enqueue options of every occurrence (queue, priority, attempts, ...). */
  options: Omit<EnqueueOptions, "id">;
  /** What to do with occurrences missed while no server ran. */
  misfire: Misfire;
  /** Paused definitions create no occurrences. */
  paused: boolean;
  /** Next occurrence (absent while paused, or when the expression has no future run). */
  nextRun?: number;
  /** Time of the last occurrence enqueued. */
  lastRun?: number;
  /** The job of the last occurrence (scheduled or triggered). */
  lastJobId?: string;
  /** The latest occurrences, newest first (at most {@link HISTORY}). */
  history: Occurrence[];
  /** When the definition was first stored. */
  createdAt: number;
  /** When it last changed. */
  updatedAt: number;
  /**
   * Set when the scheduler could not create an occurrence (args over the backend's limit, a
   * cron this version rejects, a corrupt field, ...): the definition is skipped until upsert,
   * resume or a successful trigger clears it. The other definitions go on.
   */
  lastError?: RecurringError;
}

/** Why the scheduler stopped running a definition. */
export interface RecurringError {
  /** The error's message. */
  message: string;
  /** The error's code, when it was a TaskFlowError. */
  code?: string;
  /** When it happened (ms since epoch). */
  at: number;
}

/** Options of {@link RecurringApi.upsert}. */
export interface RecurringOptions extends Omit<EnqueueOptions, "id"> {
  /** IANA timezone (default `UTC`). */
  timezone?: string;
  /** Missed occurrences: run one (`"once"`, default), none (`"skip"`) or all (`"all"`, bounded). */
  misfire?: Misfire;
}

/** Occurrences kept in a definition's history. */
export const HISTORY = 20;

const ENQUEUED: FirstState = { state: "Enqueued" };

const RECURRING_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** `tf.recurring`: define, change and operate recurring jobs. */
export class RecurringApi {
  #tf: JobWriter;

  /** The recurring API of client `tf` (or of any storage and clock). */
  constructor(tf: JobWriter) {
    this.#tf = tf;
  }

  get #storage(): Storage {
    return this.#tf.storage;
  }

  /**
   * Creates or replaces recurring job `id`. Its history, last run and paused state survive a
   * replace. Invalid cron, timezone, job or args are refused and nothing is stored.
   */
  async upsert(
    id: string,
    cron: string,
    job: JobRef,
    args: unknown,
    options: RecurringOptions = {},
  ): Promise<RecurringJob> {
    checkRecurringId(id);
    const call = "recurring.upsert";
    const read = readJobOptions(options, { call, extra: ["timezone", "misfire"] });
    const timezone = checkTimezone(read.timezone ?? "UTC");
    parseCron(cron, timezone);
    const misfire = (read.misfire ?? "once") as Misfire;
    if (!["once", "skip", "all"].includes(misfire)) {
      throw new InvalidOptionError("misfire", misfire, 'must be "once", "skip" or "all"');
    }
    const { timezone: _t, misfire: _m, ...enqueue } = read as RecurringOptions;
    // Checked as each occurrence will be: name, args (JSON, within the backend's limit), options.
    const { name, defaults } = jobOf(job);
    const { created } = prepareJob(this.#tf, { job, args, options: enqueue }, {
      first: ENQUEUED,
      call,
      id: false,
    });
    const stored: RecurringJob["options"] = {
      queue: enqueue.queue ?? defaults.queue,
      priority: enqueue.priority ?? defaults.priority,
      attempts: enqueue.attempts ?? defaults.attempts,
      backoff: enqueue.backoff ??
        (typeof defaults.backoff === "function" ? undefined : defaults.backoff),
      timeoutMs: enqueue.timeoutMs ?? defaults.timeoutMs,
      keep: enqueue.keep ?? defaults.keep,
      // The key as the occurrences' args give it (the enqueue's own, else the definition's).
      partition: created.options.partition,
    };
    return await this.#update(id, (current) => {
      const now = this.#tf.now();
      const paused = current?.paused ?? false;
      return {
        id,
        version: (current?.version ?? 0) + 1,
        cron: cron.trim(),
        timezone,
        name,
        args: created.args,
        options: JSON.parse(JSON.stringify(stored)),
        misfire,
        paused,
        nextRun: paused ? undefined : nextOccurrence(cron, timezone, now),
        lastRun: current?.lastRun,
        lastJobId: current?.lastJobId,
        history: Array.isArray(current?.history) ? current.history : [],
        createdAt: current?.createdAt ?? now,
        updatedAt: now,
      };
    }, { create: true });
  }

  /** The definition, or null. */
  async get(id: string): Promise<RecurringJob | null> {
    checkRecurringId(id);
    return await this.#storage.recurring.get(id) as RecurringJob | null;
  }

  /** Every definition, by id. */
  async list(): Promise<RecurringJob[]> {
    return (await this.#storage.recurring.list()) as RecurringJob[];
  }

  /** Deletes the definition (jobs it created stay). */
  async remove(id: string): Promise<void> {
    checkRecurringId(id);
    for (let tries = 0; tries < 20; tries++) {
      const current = await this.#storage.recurring.get(id);
      if (!current) throw new JobNotFoundError(`recurring:${id}`);
      if (await this.#storage.recurring.delete(id, current.version)) return;
    }
    throw new ConflictError(`recurring:${id}`, 20);
  }

  /** Stops creating occurrences until {@link RecurringApi.resume}. */
  async pause(id: string): Promise<RecurringJob> {
    checkRecurringId(id);
    return await this.#update(id, (current) => ({
      ...current!,
      version: current!.version + 1,
      paused: true,
      nextRun: undefined,
      updatedAt: this.#tf.now(),
    }));
  }

  /** Creates occurrences again, from the next one after now (missed ones are skipped). */
  async resume(id: string): Promise<RecurringJob> {
    checkRecurringId(id);
    return await this.#update(id, (current) => {
      const now = this.#tf.now();
      return {
        ...current!,
        version: current!.version + 1,
        paused: false,
        nextRun: nextOccurrence(current!.cron, current!.timezone, now),
        updatedAt: now,
        lastError: undefined,
      };
    });
  }

  /** Enqueues one run now, outside the schedule; returns the job id. */
  async trigger(id: string): Promise<string> {
    checkRecurringId(id);
    const definition = await this.get(id);
    if (!definition) throw new JobNotFoundError(`recurring:${id}`);
    const [jobId] = await enqueue(this.#tf, definition, definition.options);
    const at = this.#tf.now();
    await this.#update(id, (current) => ({
      ...record(current!, [{ at, jobId, by: "trigger" }], at),
      lastError: undefined,
    }));
    return jobId;
  }

  async #update(
    id: string,
    change: (current: RecurringJob | null) => RecurringJob,
    options: { create?: boolean } = {},
  ): Promise<RecurringJob> {
    for (let tries = 0; tries < 20; tries++) {
      const current = await this.#storage.recurring.get(id) as RecurringJob | null;
      if (!current && !options.create) throw new JobNotFoundError(`recurring:${id}`);
      const next = JSON.parse(JSON.stringify(change(current))) as RecurringJob;
      if (await this.#storage.recurring.put(next, current?.version ?? 0)) return next;
    }
    throw new ConflictError(`recurring:${id}`, 20);
  }
}

function checkRecurringId(id: unknown): void {
  if (typeof id !== "string" || !RECURRING_ID.test(id)) {
    throw new InvalidOptionError(
      "recurring id",
      id,
      "must be 1–64 characters of letters, digits and _ . -",
    );
  }
}

/** `current` with `occurrences` added to its history. */
function record(current: RecurringJob, occurrences: Occurrence[], now: number): RecurringJob {
  const newest = occurrences.at(-1);
  return {
    ...current,
    version: current.version + 1,
    lastRun: newest?.at ?? current.lastRun,
    lastJobId: newest?.jobId ?? current.lastJobId,
    history: [...occurrences.reverse(), ...current.history].slice(0, HISTORY),
    updatedAt: now,
  };
}

/** Creates one job of `definition` (validated like any enqueue). */
function enqueue(
  writer: JobWriter,
  definition: RecurringJob,
  options: EnqueueOptions,
): Promise<string[]> {
  const item = { job: definition.name, args: definition.args, options };
  return createJobs(writer, [prepareJob(writer, item, { first: ENQUEUED })]);
}

/** A definition the scheduler stopped running (see {@link RecurringJob.lastError}). */
export interface BrokenDefinition {
  /** The definition's id. */
  id: string;
  /** Why it stopped. */
  message: string;
}

/**
 * The scheduling step every worker runs: enqueue the due occurrences of every definition, then
 * advance it. Returns when the next occurrence is due, and the definitions this step marked
 * broken (one that throws is marked by compare-and-set and skipped until changed, so the
 * others go on). `tf` is a client, or any storage and clock (a worker passes its own).
 */
export async function scheduleRecurring(
  tf: JobWriter,
): Promise<{ enqueued: number; nextDue: number; broken: BrokenDefinition[] }> {
  let enqueued = 0, nextDue = Infinity;
  const broken: BrokenDefinition[] = [];
  for (const definition of await tf.storage.recurring.list() as RecurringJob[]) {
    if (definition.lastError !== undefined) continue;
    try {
      const step = await scheduleOne(tf, definition);
      enqueued += step.enqueued;
      nextDue = Math.min(nextDue, step.nextDue);
    } catch (error) {
      // The storage being away is nobody's definition's fault: the step fails as a whole.
      if (error instanceof StorageUnavailableError) throw error;
      const message = errorText(error);
      if (await markBroken(tf, definition, error)) broken.push({ id: definition.id, message });
    }
  }
  return { enqueued, nextDue, broken };
}

async function scheduleOne(
  tf: JobWriter,
  definition: RecurringJob,
): Promise<{ enqueued: number; nextDue: number }> {
  checkShape(definition);
  let enqueued = 0, nextDue = Infinity;
  let current: RecurringJob | null = definition;
  for (let tries = 0; current && tries < 10; tries++) {
    if (current.paused || current.nextRun === undefined || current.lastError) break;
    const now = tf.now();
    if (current.nextRun > now) {
      nextDue = Math.min(nextDue, current.nextRun);
      break;
    }
    const due = dueOccurrences(current, now);
    for (const at of due) {
      try {
        await enqueue(tf, current, { ...current.options, id: occurrenceId(current.id, at) });
        enqueued++;
      } catch (error) {
        if (!(error instanceof JobExistsError)) throw error; // another server created it first
      }
    }
    const next = {
      ...record(
        current,
        due.map((at) => ({ at, jobId: occurrenceId(current!.id, at), by: "schedule" as const })),
        now,
      ),
      nextRun: nextOccurrence(current.cron, current.timezone, now),
    };
    if (await tf.storage.recurring.put(next, current.version)) {
      if (next.nextRun !== undefined) nextDue = Math.min(nextDue, next.nextRun);
      break;
    }
    current = await tf.storage.recurring.get(current.id) as RecurringJob | null;
    if (current) checkShape(current);
  }
  return { enqueued, nextDue };
}

/** Throws {@link CorruptRecordError} unless the stored definition has the fields it needs. */
function checkShape(definition: RecurringJob): void {
  const { id, cron, timezone, name, options, history, nextRun, version } = definition;
  const problem = typeof cron !== "string"
    ? "cron is not a string"
    : typeof timezone !== "string"
    ? "timezone is not a string"
    : typeof name !== "string"
    ? "name is not a string"
    : typeof options !== "object" || options === null
    ? "options is not an object"
    : !Array.isArray(history)
    ? "history is not a list"
    : nextRun !== undefined && !Number.isFinite(nextRun)
    ? "nextRun is not a time"
    : !Number.isInteger(version)
    ? "version is not an integer"
    : undefined;
  if (problem) throw new CorruptRecordError(`recurring:${id}`, problem);
  parseCron(cron, checkTimezone(timezone));
}

/** Marks `definition` broken by compare-and-set; true when this call marked it. */
async function markBroken(
  tf: JobWriter,
  definition: RecurringJob,
  error: unknown,
): Promise<boolean> {
  const lastError: RecurringError = { message: errorText(error), at: tf.now() };
  if (error instanceof TaskFlowError) lastError.code = error.code;
  const version = Number.isInteger(definition.version) ? definition.version : 0;
  try {
    const marked = { ...definition, version: version + 1, lastError };
    return await tf.storage.recurring.put(JSON.parse(JSON.stringify(marked)), version);
  } catch {
    return false; // changed or unwritable meanwhile: the next step tries again
  }
}
