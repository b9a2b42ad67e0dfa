/**
 * @module
 * PLACEHOLDER of the r19-core branch, superseded by the storage branch (r19-store), which
 * implements `remove` and `finished` natively on KV and Redis: until then these backends list no
 * finished jobs and refuse every removal, so pruning is a harmless no-op on them.
 */

import type { Page, Removal, RemoveResult, Storage } from "./storage.ts";

/** Refuses every removal (placeholder; see the module comment). */
export function refuseRemovals(removals: readonly Removal[]): Promise<RemoveResult> {
  return Promise.resolve({ removed: [], refused: removals.map((r) => r.id) });
}

/** Lists nothing (placeholder; see the module comment). */
export function noFinished(_query: Parameters<Storage["finished"]>[0]): Promise<Page> {
  return Promise.resolve({ jobs: [] });
}
