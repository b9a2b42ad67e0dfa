/**
 * @module
 * A job's partition key (`options.partition`, or `defineJob(..., { partition: (args) => key })`):
 * the unit the queue's `partition` limits apply to, e.g. a tenant id.
 */

import { InvalidOptionError } from "../../storage/errors.ts";
import { checkKey, errorText } from "../options.ts";

/** Longest partition key, in characters. */
export const MAX_PARTITION_LENGTH = 128;

/** Computes a job's partition key from its arguments (set in `defineJob`). */
// deno-lint-ignore no-explicit-any
export type PartitionFunction = (args: any) => string;

/** Throws {@link InvalidOptionError} unless `value` is a key: 1–128 characters, no control ones. */
export function checkPartition(value: unknown, where: string): string {
  return checkKey(value, where, MAX_PARTITION_LENGTH);
}

/** Checks a definition's `partition`: a key or a function of the arguments. */
export function checkPartitionDefault(value: unknown, where: string): void {
  if (typeof value !== "function") checkPartition(value, where);
}

/**
 * The key of a job: the enqueue's own `partition`, else the definition's (a function is called
 * with the stored arguments; what it throws or returns is checked and named).
 */
export function partitionOf(
  own: unknown,
  fallback: string | PartitionFunction | undefined,
  how: { args: unknown; name: string; where: string },
): string | undefined {
  if (typeof own === "function") {
    throw new InvalidOptionError(
      `${how.where}.partition`,
      "function",
      "a function cannot be stored; set it in defineJob",
    );
  }
  if (own !== undefined) return checkPartition(own, `${how.where}.partition`);
  if (typeof fallback !== "function") return fallback;
  const path = `partition of job ${JSON.stringify(how.name)}`;
  let key: unknown;
  try {
    key = fallback(how.args);
  } catch (error) {
    throw new InvalidOptionError(path, "(threw)", `its function threw: ${errorText(error)}`);
  }
  return checkPartition(key, path);
}
