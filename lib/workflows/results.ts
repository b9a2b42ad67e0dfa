/**
 * @module
 * What a dependent sees of its dependencies when it runs: read from their records then (results
 * are never copied into the dependent).
 */

import type { Storage } from "../../storage/storage.ts";
import type { DependencyOutcome, JobRecord } from "../job.ts";

/**
 * The state, result and error of each dependency of `record`, by id (`ctx.dependencies()`);
 * a dependency removed since (by retention, once the dependent had finished) is left out.
 */
export async function readDependencies(
  storage: Storage,
  record: Pick<JobRecord, "dependsOn">,
): Promise<Record<string, DependencyOutcome>> {
  const ids = record.dependsOn ?? [];
  const out: Record<string, DependencyOutcome> = {};
  for (let i = 0; i < ids.length; i += 500) {
    const records = await storage.getMany(ids.slice(i, i + 500));
    for (const dep of records) {
      if (!dep) continue;
      const outcome: DependencyOutcome = { state: dep.state };
      if (dep.result !== undefined) outcome.result = dep.result;
      if (dep.error !== undefined) outcome.error = dep.error;
      out[dep.id] = outcome;
    }
  }
  return out;
}
