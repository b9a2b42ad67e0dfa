/**
 * @module
 * Checks of the client's read and operate calls' arguments (list queries, timeline ranges,
 * reasons), so that the client reads as what each call does.
 */

import type { ListQuery } from "../storage/storage.ts";
import { InvalidOptionError } from "../storage/errors.ts";
import { checkQueueName } from "./job.ts";
import { checkLimit, checkText, readOptions } from "./options.ts";
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
