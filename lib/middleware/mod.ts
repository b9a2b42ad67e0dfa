/**
 * @module
 * Middleware: functions that wrap what already exists, each job create call of a client and
 * each attempt of a worker, as `(ctx, next) => ...`. They never write storage themselves.
 */

import { InvalidOptionError } from "../../storage/errors.ts";
import type { JobContext, JobRecord } from "../job.ts";

/** The client calls create middleware wraps. */
export type CreateCall = "enqueue" | "schedule" | "enqueueMany" | "continueWith" | "batch" | "flow";

/** One job of a create call, as create middleware sees it (before it is validated). */
export interface CreateJob {
  /** The job's name. */
  readonly name: string;
  /** Its arguments: a middleware may replace them (e.g. encrypt them). */
  args: unknown;
  /** Its options as given (`{}` when none): a middleware may replace or add to them. */
  options: Record<string, unknown>;
}

/** What create middleware receives: the call and its jobs, in order. */
export interface CreateContext {
  /** The client call being made. */
  readonly call: CreateCall;
  /**
   * The jobs the call creates: one for `enqueue`, `schedule`, `continueWith`; the items of
   * `enqueueMany`; a batch's members then its `then`; a flow's nodes depth first, root first.
   */
  readonly jobs: readonly CreateJob[];
}

/**
 * Wraps every create call of a client (`TaskFlow.open(url, { middleware })`). `next()` writes
 * the jobs and resolves to their ids, in the order of `ctx.jobs`; throwing (before or after
 * `next()`) rejects the call, and throwing before `next()` writes nothing.
 *
 * @example
 * ```ts
 * import { type CreateMiddleware, TaskFlow } from "../mod.ts";
 * // Every job of this service goes to its own queue unless the caller chose one.
 * const ownQueue: CreateMiddleware = async (ctx, next) => {
 *   for (const job of ctx.jobs) job.options = { queue: "billing", ...job.options };
 *   return await next();
 * };
 * const tf = await TaskFlow.open("memory:", { middleware: [ownQueue] });
 * const id = await tf.enqueue("invoice.send", { invoice: 7 });
 * console.log((await tf.get(id))?.queue); // "billing"
 * await tf.close();
 * ```
 */
export type CreateMiddleware = (
  ctx: CreateContext,
  next: () => Promise<string[]>,
) => Promise<string[]>;

/** What attempt middleware receives: the job claimed, its handler's context and arguments. */
export interface AttemptContext {
  /** The job's record as claimed (state Processing, `attempt` counting this one). */
  readonly job: Readonly<JobRecord>;
  /** The context the handler receives (`jobId`, `attempt`, `signal`, `log`, ...). */
  readonly context: JobContext;
  /** The arguments the handler receives: a middleware may replace them (e.g. decrypt them). */
  args: unknown;
  /** The id of the worker running the attempt. */
  readonly serverId: string;
}

/**
 * Wraps every attempt of a worker (`createWorker({ middleware })`). `next()` runs the handler
 * (or the next middleware) and resolves to its result; what the middleware returns is the
 * attempt's result, what it throws is the attempt's error (a `DiscardError` fails the job
 * without retries, a `SnoozeError` snoozes it).
 *
 * @example
 * ```ts
 * import { type AttemptMiddleware, createWorker, defineJob, DiscardError } from "../mod.ts";
 * // A 404 will never succeed: fail the job at once instead of retrying it.
 * const no404Retries: AttemptMiddleware = async (ctx, next) => {
 *   try {
 *     return await next();
 *   } catch (error) {
 *     if ((error as { status?: number }).status === 404) throw new DiscardError("gone");
 *     throw error;
 *   } finally {
 *     console.log(`${ctx.job.name} #${ctx.context.attempt} done`);
 *   }
 * };
 * const fetchPage = defineJob("page.fetch", async (args: { url: string }) => {
 *   const response = await fetch(args.url);
 *   if (!response.ok) throw Object.assign(new Error(response.statusText), { status: response.status });
 *   return await response.text();
 * });
 * const worker = createWorker({ url: "memory:", jobs: [fetchPage], middleware: [no404Retries] });
 * console.log(worker.id);
 * ```
 */
export type AttemptMiddleware = (
  ctx: AttemptContext,
  next: () => Promise<unknown>,
) => Promise<unknown>;

/** Reads a `middleware` option: an array of functions (throws `INVALID_OPTION` otherwise). */
export function readMiddleware<M extends (...args: any[]) => unknown>(
  value: unknown,
  where = "middleware",
): readonly M[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new InvalidOptionError(where, value, "must be an array of functions (ctx, next) => ...");
  }
  const list = [...value];
  list.forEach((item, i) => {
    if (typeof item !== "function") {
      throw new InvalidOptionError(`${where}[${i}]`, item, "must be a function (ctx, next) => ...");
    }
  });
  return Object.freeze(list as M[]);
}

/**
 * Runs `ctx` through `chain` (the first wraps all the others) and `last` innermost. A
 * middleware that calls `next()` twice gets `INVALID_OPTION` from its second call.
 */
export function runChain<C, R>(
  chain: readonly ((ctx: C, next: () => Promise<R>) => Promise<R>)[],
  ctx: C,
  last: () => Promise<R>,
): Promise<R> {
  let called = -1;
  const dispatch = (i: number): Promise<R> => {
    if (i <= called) {
      return Promise.reject(
        new InvalidOptionError(`middleware[${i - 1}]`, "next()", "called next() more than once"),
      );
    }
    called = i;
    if (i === chain.length) return last();
    try {
      return Promise.resolve(chain[i](ctx, () => dispatch(i + 1)));
    } catch (error) {
      return Promise.reject(error);
    }
  };
  return dispatch(0);
}
