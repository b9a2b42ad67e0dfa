/**
 * @module
 * Retention: policies, the pure pruning decision, the pass, the stored policy in force, and
 * the client's `retention()` / `prune()` calls (whose bodies live here, thin methods on TaskFlow).
 */

import type { Storage } from "../../storage/storage.ts";
import { InvalidOptionError } from "../../storage/errors.ts";
import { checkFunctions, readOptions } from "../options.ts";
import { prunePass, type PruneReport } from "./pass.ts";
import { DEFAULT_RETENTION, type RetentionPolicy } from "./policy.ts";
import { policyInForce, readStoredRetention, type StoredRetention } from "./store.ts";
import { readPrunePasses, recordPrunePass } from "./passes.ts";

export * from "./policy.ts";
export * from "./decide.ts";
export * from "./pass.ts";
export * from "./store.ts";
export * from "./passes.ts";

/** `TaskFlow.retention`: the stored policy with the last pruning passes recorded. */
export async function retentionInForce(storage: Storage): Promise<StoredRetention | null> {
  const [stored, passes] = await Promise.all([
    readStoredRetention(storage),
    readPrunePasses(storage),
  ]);
  if (!stored || !passes) return stored;
  return passes.lastRemoval
    ? { ...stored, lastPass: passes.last, lastRemoval: passes.lastRemoval }
    : { ...stored, lastPass: passes.last };
}

/**
 * Options of `TaskFlow.prune`.
 *
 * @example
 * ```ts
 * import type { PruneOptions } from "../mod.ts";
 * const options: PruneOptions = { dryRun: true, limit: 1_000 };
 * console.log(options);
 * ```
 */
export interface PruneOptions {
  /** Decide and report only: nothing is archived or removed. */
  dryRun?: boolean;
  /** Most jobs removed (default 100,000; 1 to 10,000,000). */
  limit?: number;
  /** The time expiry is judged at (default: the client's clock). */
  now?: number;
  /**
   * Receives each slice before it is removed (required when the policy in force archives,
   * so that a manual prune never drops what the workers would have archived).
   */
  archive?: RetentionPolicy["archive"];
}

/** Most jobs one `prune()` removes unless told otherwise. */
const PRUNE_LIMIT = 100_000;

/** `TaskFlow.prune`: one full pass now with the policy in force (stored, else the default). */
export async function pruneNow(
  storage: Storage,
  input: unknown,
  clock: () => number,
): Promise<PruneReport> {
  const options = readOptions(input, {
    call: "prune",
    allowed: ["dryRun", "limit", "now", "archive"],
  }) as PruneOptions;
  checkFunctions(options, ["archive"], { where: "options", optional: true });
  const { dryRun = false, limit = PRUNE_LIMIT } = options;
  if (typeof dryRun !== "boolean") {
    throw new InvalidOptionError("options.dryRun", dryRun, "must be true or false");
  }
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= 10_000_000)) {
    throw new InvalidOptionError("options.limit", limit, "must be an integer from 1 to 10000000");
  }
  const now = options.now ?? clock();
  if (typeof now !== "number" || !Number.isFinite(now) || now < 0) {
    throw new InvalidOptionError("options.now", now, "must be ms since epoch");
  }
  const { policy, archivedBy } = await policyInForce(
    storage,
    DEFAULT_RETENTION,
    options.archive !== undefined || dryRun,
  );
  if (archivedBy !== undefined) {
    throw new InvalidOptionError(
      "options.archive",
      undefined,
      `the retention policy in force (stored by ${archivedBy}) archives jobs before removing ` +
        "them: pass an archive function (the CLI: --archive <dir>), or use dryRun",
    );
  }
  const report = await prunePass(storage, {
    policy,
    archive: options.archive,
    now,
    dryRun,
    limit,
    pages: Infinity,
  });
  if (!dryRun) {
    const { removed, kept } = report;
    await recordPrunePass(storage, { at: clock(), by: "tf.prune()", removed, kept });
  }
  return report;
}
