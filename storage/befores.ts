/**
 * @module
 * The record each commit of an append was built on, shared by the backends that read records
 * before they write (Redis, PostgreSQL).
 */

import type { JobRecord } from "../lib/job.ts";
import type { AppendResult, Change, Commit } from "./storage.ts";

/**
 * The record each commit was built on: its `before`, the record an earlier commit of the same
 * append leaves, or (for commits built without one) the stored record read by `getMany` in one
 * call. A commit whose stored job is not at its version is refused here, in `results`.
 */
export async function beforesOf(
  changes: readonly Change[],
  results: AppendResult[],
  getMany: (ids: string[]) => Promise<(JobRecord | null)[]>,
): Promise<Map<Commit, JobRecord | null>> {
  const befores = new Map<Commit, JobRecord | null>();
  const latest = new Map<string, JobRecord>();
  const unknown: Commit[] = [];
  for (const change of changes) {
    for (const commit of change.commits) {
      const known = commit.expect === 0 ? null : commit.before ??
        (latest.get(commit.id)?.version === commit.expect ? latest.get(commit.id) : undefined);
      if (known === undefined) unknown.push(commit);
      else befores.set(commit, known);
      latest.set(commit.id, commit.record);
    }
  }
  if (!unknown.length) return befores;
  const stored = await getMany([...new Set(unknown.map((commit) => commit.id))]);
  const byId = new Map(stored.flatMap((record) => record ? [[record.id, record]] : []));
  for (const commit of unknown) {
    const record = byId.get(commit.id);
    if (record?.version === commit.expect) befores.set(commit, record);
  }
  changes.forEach((change, i) => {
    const conflicts = change.commits.filter((commit) => !befores.has(commit)).map((c) => c.id);
    if (conflicts.length) results[i] = { ok: false, conflicts };
  });
  return befores;
}
