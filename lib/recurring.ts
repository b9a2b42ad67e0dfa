/**
 * @module
 * Recurring jobs: cron schedules (via croner) in IANA timezones, correct across DST changes.
 * Every server runs the scheduler; an occurrence is created once however many run, because its
 * job id is deterministic and the definition advances by compare-and-set.
 */

import { Cron } from "npm:croner@11.0.1";
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
  InvalidCronError,
  InvalidOptionError,
  InvalidTimezoneError,
  JobExistsError,
  JobNotFoundError,
} from "../storage/errors.ts";
import { checkDefaults, checkJobName, isJobDefinition } from "./job.ts";
import type { Json } from "./payload.ts";
import { toJson } from "./payload.ts";

/** What to do with occurrences missed while no server ran. */
export type Misfire = "once" | "skip" | "all";

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
/** Most missed occurrences `misfire: "all"` runs at once. */
export const MAX_CATCH_UP = 100;
/** An occurrence later than this is "missed" for `misfire: "skip"`. */
export const MISFIRE_GRACE_MS = 30_000;

const ENQUEUED: FirstState = { state: "Enqueued" };

const RECURRING_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** Throws {@link InvalidTimezoneError} unless `timezone` is an IANA zone this runtime knows. */
export function checkTimezone(timezone: unknown): string {
  if (typeof timezone !== "string" || timezone === "") {
    throw new InvalidTimezoneError(String(timezone));
  }
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new InvalidTimezoneError(timezone);
  }
  return timezone;
}

/** Parses `cron` (throws {@link InvalidCronError} naming the bad part). */
export function parseCron(cron: unknown, timezone = "UTC"): Cron {
  if (typeof cron !== "string") throw new InvalidCronError(String(cron), "must be a string");
  try {
    return new Cron(cron.trim(), { timezone, paused: true });
  } catch (error) {
    const reason = (error as Error).message.replace(/^CronPattern: /, "");
    throw new InvalidCronError(cron, reason);
  }
}

/** The first occurrence of `cron` in `timezone` strictly after `after`, or undefined. */
export function nextOccurrence(cron: string, timezone: string, after: number): number | undefined {
  return parseCron(cron, timezone).nextRun(new Date(after))?.getTime();
}

/** The deterministic job id of an occurrence, shared by every server. */
export function occurrenceId(recurringId: string, at: number): string {
  return `recurring:${recurringId}:${at}`;
}

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
    const timezone = checkTimezone(options.timezone ?? "UTC");
    parseCron(cron, timezone);
    const misfire = options.misfire ?? "once";
    if (!["once", "skip", "all"].includes(misfire)) {
      throw new InvalidOptionError("misfire", misfire, 'must be "once", "skip" or "all"');
    }
    const name = checkJobName(isJobDefinition(job) ? job.name : job);
    const { timezone: _t, misfire: _m, ...enqueue } = options;
    checkDefaults(enqueue);
    const defaults = isJobDefinition(job) ? job.defaults : {};
    const stored: RecurringJob["options"] = {
      queue: enqueue.queue ?? defaults.queue,
      priority: enqueue.priority ?? defaults.priority,
      attempts: enqueue.attempts ?? defaults.attempts,
      backoff: enqueue.backoff ??
        (typeof defaults.backoff === "function" ? undefined : defaults.backoff),
      timeoutMs: enqueue.timeoutMs ?? defaults.timeoutMs,
    };
    const json = toJson(args, "args");
    return await this.#update(id, (current) => {
      const now = this.#tf.now();
      const paused = current?.paused ?? false;
      return {
        id,
        version: (current?.version ?? 0) + 1,
        cron: cron.trim(),
        timezone,
        name,
        args: json,
        options: JSON.parse(JSON.stringify(stored)),
        misfire,
        paused,
        nextRun: paused ? undefined : nextOccurrence(cron, timezone, now),
        lastRun: current?.lastRun,
        lastJobId: current?.lastJobId,
        history: current?.history ?? [],
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
    await this.#update(id, (current) => record(current!, [{ at, jobId, by: "trigger" }], at));
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
      const next = change(current);
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

/**
 * The scheduling step every worker runs: enqueue the due occurrences of every definition, then
 * advance it. Returns when the next occurrence is due. `tf` is a client, or any storage and
 * clock (a worker passes its own).
 */
export async function scheduleRecurring(
  tf: JobWriter,
): Promise<{ enqueued: number; nextDue: number }> {
  let enqueued = 0, nextDue = Infinity;
  for (const definition of await tf.storage.recurring.list() as RecurringJob[]) {
    let current: RecurringJob | null = definition;
    for (let tries = 0; current && tries < 10; tries++) {
      if (current.paused || current.nextRun === undefined) break;
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
    }
  }
  return { enqueued, nextDue };
}

/** The occurrences of `definition` to enqueue at `now`, by its misfire policy. */
export function dueOccurrences(definition: RecurringJob, now: number): number[] {
  const all: number[] = [];
  let at: number | undefined = definition.nextRun;
  while (at !== undefined && at <= now && all.length < MAX_CATCH_UP) {
    all.push(at);
    at = nextOccurrence(definition.cron, definition.timezone, at);
  }
  if (all.length === 0) return [];
  switch (definition.misfire) {
    case "all":
      return all;
    case "skip":
      return all.filter((occurrence) => now - occurrence <= MISFIRE_GRACE_MS).slice(-1);
    default:
      return all.slice(-1);
  }
}
