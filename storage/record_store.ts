/**
 * @module
 * The compare-and-set rules of a record store (recurring definitions, batches), shared by
 * the backends that check in TypeScript (the Redis script applies the same rules in Lua).
 */

import type { RecurringRecord } from "./storage.ts";

/** Whether `put(record, expect)` may replace `stored`: it is at `expect` (0: absent). */
export function canPut(stored: RecurringRecord | null | undefined, expect: number): boolean {
  return (stored?.version ?? 0) === expect;
}

/** Whether `delete(id, expect)` may remove `stored`: it exists and is at `expect`. */
export function canDelete(stored: RecurringRecord | null | undefined, expect: number): boolean {
  return !!stored && stored.version === expect;
}

/** Records in the order `list()` returns them: by id. */
export function byId(records: RecurringRecord[]): RecurringRecord[] {
  return records.sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
