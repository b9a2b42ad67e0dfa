/**
 * @module
 * Creating jobs that wait for others (`dependsOn`): validation, then one change per job that
 * creates it Awaiting and adds it to each dependency's `dependents` (compare-and-set on every
 * dependency, so that none finishes unseen meanwhile). Dependencies already final count at once.
 */

import type { Change, Commit } from "../../storage/storage.ts";
import {
  ConflictError,
  DependencyNotFoundError,
  InvalidOptionError,
  JobExistsError,
} from "../../storage/errors.ts";
import { backoff, MAX_TRIES } from "../changes.ts";
import { appendCommit, createCommit } from "../commits.ts";
import {
  createJobs,
  type EnqueueItem,
  type FirstState,
  type JobWriter,
  MAX_CONTINUATIONS,
  type PreparedJob,
  prepareJob,
  readItems,
  refuseTaken,
  scheduledAt,
} from "../create.ts";
import type { DependencyFailure, NewEvent } from "../events.ts";
import { checkJobId, type JobRecord, readJobOptions } from "../job.ts";
import { guard } from "../options.ts";
import { isFinal, releaseEvent } from "./release.ts";

/** Most dependencies one job may wait for. */
export const MAX_DEPENDENCIES = 1_000;

/** The option keys of a job with dependencies, besides the job options. */
export const DEPENDENCY_OPTIONS = ["dependsOn", "onDependencyFailure"] as const;

/** What a job waits for, read from its options. */
export interface Dependencies {
  /** The ids, each once. */
  ids: string[];
  /** Its policy when one ends Failed or Deleted. */
  onFailure?: DependencyFailure;
}

/** True when `options` (not yet checked) ask for dependencies. */
export function hasDependencies(options: unknown): boolean {
  return guard("options", () =>
    typeof options === "object" && options !== null &&
    ((options as Record<string, unknown>).dependsOn !== undefined ||
      (options as Record<string, unknown>).onDependencyFailure !== undefined));
}

/** Reads and checks `dependsOn` and `onDependencyFailure` of options already read. */
export function readDependencies(
  options: Record<string, unknown>,
  where = "options",
): Dependencies | undefined {
  const { dependsOn, onDependencyFailure } = options;
  if (dependsOn === undefined && onDependencyFailure === undefined) return undefined;
  const list = guard(`${where}.dependsOn`, () => Array.isArray(dependsOn) ? [...dependsOn] : null);
  if (!list || list.length === 0 || list.length > MAX_DEPENDENCIES) {
    throw new InvalidOptionError(
      `${where}.dependsOn`,
      dependsOn,
      `must be an array of 1 to ${MAX_DEPENDENCIES} job ids`,
    );
  }
  list.forEach((id) => checkJobId(id));
  const policy = onDependencyFailure;
  if (policy !== undefined && policy !== "fail" && policy !== "delete" && policy !== "run") {
    throw new InvalidOptionError(
      `${where}.onDependencyFailure`,
      policy,
      'must be "fail", "delete" or "run"',
    );
  }
  if (options.unique !== undefined || options.debounce !== undefined) {
    throw new InvalidOptionError(
      `${where}.dependsOn`,
      dependsOn,
      "cannot be combined with unique or debounce",
    );
  }
  const ids = [...new Set(list as string[])];
  return policy === undefined ? { ids } : { ids, onFailure: policy as DependencyFailure };
}

/** A job validated to be created waiting for `deps`. */
export interface PreparedDependent extends PreparedJob {
  /** What it waits for. */
  deps: Dependencies;
}

/**
 * Validates one enqueue (or schedule, with `runAt`) of a job with dependencies; writes nothing.
 */
export function prepareDependent(
  writer: JobWriter,
  item: EnqueueItem,
  how: { call: string; where?: string; extra?: readonly string[]; runAt?: number },
): PreparedDependent {
  const { call, where = "options", extra = [] } = how;
  const read = readJobOptions(item.options, {
    call,
    where,
    extra: ["id", "expiresAt", ...extra, ...DEPENDENCY_OPTIONS],
  });
  const deps = readDependencies(read, where)!;
  const first: FirstState = { state: "Awaiting" };
  const prepared = prepareJob(writer, item, {
    first,
    call,
    where,
    extra: [...extra, ...DEPENDENCY_OPTIONS],
  });
  const options = prepared.created.options;
  if (deps.onFailure !== undefined) options.onDependencyFailure = deps.onFailure;
  if (how.runAt !== undefined) options.runAt = how.runAt;
  if (deps.ids.includes(prepared.id)) {
    throw new InvalidOptionError(`${where}.dependsOn`, prepared.id, "a job cannot wait for itself");
  }
  return { ...prepared, deps };
}

/** Throws unless job `record` may take one more dependent (see `MAX_CONTINUATIONS`). */
export function checkRoom(record: JobRecord, more = 1): void {
  if (record.continuations.length + (record.dependents?.length ?? 0) + more > MAX_CONTINUATIONS) {
    throw new InvalidOptionError(
      "dependsOn",
      record.id,
      `names a job that already has ${MAX_CONTINUATIONS} continuations and dependents, ` +
        "the most one job may have",
    );
  }
}

/** The `dependency` events a new job starts with: one per dependency already final. */
export function finalNotices(deps: readonly JobRecord[], at: number): NewEvent[] {
  return deps.filter((d) => isFinal(d.state)).map((d) => ({
    type: "dependency",
    at,
    id: d.id,
    state: d.state,
  }));
}

/**
 * The commit creating `job` at `at` Awaiting its dependencies `deps` (read just now), counting
 * the final ones, and released at once when nothing is left to wait for.
 */
export function dependentCommit(
  job: PreparedJob,
  deps: readonly JobRecord[],
  at: number,
  extra: { dependsOn: string[]; dependents?: string[]; flowId?: string; staged?: true },
): Commit {
  const created = { ...job.created, at };
  for (const [key, value] of Object.entries(extra)) {
    if (value !== undefined) (created as Record<string, unknown>)[key] = value;
  }
  // A reason true for the whole wait (the job page's graph shows which are still pending).
  const n = extra.dependsOn.length;
  const reason = n === 0
    ? job.first.reason ?? "waiting"
    : `waiting for ${n === 1 ? "its dependency" : `its ${n} dependencies`}`;
  const events: NewEvent[] = [
    { type: "state", at, state: "Awaiting", reason },
    ...finalNotices(deps, at),
  ];
  const commit = createCommit(job.id, created, events);
  const release = releaseEvent(commit.record, at);
  return release ? createCommit(job.id, created, [...events, release]) : commit;
}

/**
 * Writes `job` waiting for its dependencies: one change with its create commit and a
 * `dependent` event on each dependency; re-read and retried when a dependency moved meanwhile.
 */
export async function createDependent(
  writer: JobWriter,
  job: PreparedDependent,
): Promise<string> {
  if (job.custom) await refuseTaken(writer.storage, [job.id]);
  const submit = writer.submit
    ? (change: Change) => writer.submit!(change)
    : (change: Change) => writer.storage.append([change]).then((results) => results[0]);
  const ids = job.deps.ids;
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const read = await writer.storage.getMany(ids);
    const deps = read.map((record, i) => {
      if (!record) throw new DependencyNotFoundError(ids[i]);
      checkRoom(record);
      return record;
    });
    const at = writer.now();
    const child = dependentCommit(job, deps, at, { dependsOn: ids });
    const parents = deps.map((d) => appendCommit(d, [{ type: "dependent", at, childId: job.id }]));
    const result = await submit({ commits: [...parents, child] });
    if (result.ok) return job.id;
    if (result.conflicts.includes(job.id)) throw new JobExistsError(job.id);
    await backoff(tries, writer.random);
  }
  throw new ConflictError(ids[0], MAX_TRIES);
}

/** `enqueue` / `schedule` of one job with dependencies (`runAt`: scheduled for then). */
export async function enqueueAfter(
  writer: JobWriter,
  item: EnqueueItem,
  call: "enqueue" | "schedule",
): Promise<string> {
  if (call === "enqueue") {
    return await createDependent(writer, prepareDependent(writer, item, { call: "enqueue" }));
  }
  const read = readJobOptions(item.options, {
    call: "schedule",
    extra: ["id", "delayMs", "at", "expiresAt", ...DEPENDENCY_OPTIONS],
  });
  const runAt = scheduledAt(read, writer.now);
  const job = prepareDependent(writer, item, { call: "schedule", extra: ["delayMs", "at"], runAt });
  return await createDependent(writer, job);
}

/**
 * `enqueueMany` when some items have dependencies: every item is validated first; those without
 * are created together, then those with, in order (so they may wait for earlier items' ids).
 */
export async function enqueueManyAfter(writer: JobWriter, items: unknown): Promise<string[]> {
  const list = readItems(items, "enqueueMany");
  const prepared: (PreparedJob | PreparedDependent)[] = list.map((item, i) => {
    const how = { call: "enqueueMany", where: `items[${i}]` };
    return hasDependencies(item.options)
      ? prepareDependent(writer, item, how)
      : prepareJob(writer, item, { ...how, first: { state: "Enqueued" } });
  });
  // Dependencies outside the call must exist before anything is written.
  const own = new Set(prepared.map((p) => p.id));
  const outside = [
    ...new Set(prepared.flatMap((p) => "deps" in p ? p.deps.ids.filter((i) => !own.has(i)) : [])),
  ];
  const found = outside.length ? await writer.storage.getMany(outside) : [];
  const gone = found.findIndex((r) => r === null);
  if (gone >= 0) throw new DependencyNotFoundError(outside[gone]);
  const plain = prepared.filter((p) => !("deps" in p));
  const created = new Map<number, string>();
  const plainIds = plain.length ? await createJobs(writer, plain) : [];
  let k = 0;
  prepared.forEach((p, i) => {
    if (!("deps" in p)) created.set(i, plainIds[k++]);
  });
  for (const [i, p] of prepared.entries()) {
    if ("deps" in p) created.set(i, await createDependent(writer, p as PreparedDependent));
  }
  return prepared.map((_, i) => created.get(i)!);
}
