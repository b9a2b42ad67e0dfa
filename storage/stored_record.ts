/**
 * @module
 * Job records read back from a store: anything that is not the record of the job asked for is
 * a {@link CorruptRecordError}, with the same text on every backend.
 */

import type { JobRecord } from "../lib/job.ts";
import { CorruptRecordError } from "./errors.ts";

/** `value` as the record of job `id` (null when absent); throws when it is not one. */
export function checkedRecord(id: string, value: unknown): JobRecord | null {
  if (value === null || value === undefined) return null;
  const record = value as JobRecord;
  if (typeof record !== "object" || record.id !== id || typeof record.state !== "string") {
    throw new CorruptRecordError(id, "the stored record is not a job record");
  }
  return record;
}

/** The record of job `id` stored as JSON text (null when absent); throws when it is not one. */
export function parsedRecord(id: string, json: string | null): JobRecord | null {
  if (json === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new CorruptRecordError(id, "the stored record is not JSON");
  }
  return checkedRecord(id, value);
}
