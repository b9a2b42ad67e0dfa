/**
 * @module
 * The record of the last pruning passes, in `storage.settings` under id "prune", so that a
 * dashboard can say when pruning last ran, by whom, what it removed, and when it runs next.
 * Written by compare-and-set after each pass; it is a status, so a write lost to a race is
 * dropped rather than retried forever.
 */

import type { RecurringRecord, Storage } from "../../storage/storage.ts";
import type { FinalKey } from "./keep.ts";

/** The settings record id of the last passes. */
export const PRUNE_ID = "prune";

/** One pruning pass as recorded (the shape of `StoredRetention.lastPass`). */
export interface PrunePass {
  /** When the pass ended (ms since epoch, the pruner's clock). */
  at: number;
  /** The server id of the worker that ran it, or "tf.prune()" for a manual prune. */
  by: string;
  /** Jobs removed per final state. */
  removed: Record<FinalKey, number>;
  /** Expired jobs kept because something still depends on them. */
  kept: number;
  /** How often that worker prunes (ms); absent for a manual prune. */
  everyMs?: number;
  /** Why the pass removed nothing on purpose or failed, when it did. */
  problem?: string;
}

/** The last pass, and the last one that removed anything. */
export interface PrunePasses {
  /** The newest pass recorded. */
  last: PrunePass;
  /** The newest pass that removed at least one job. */
  lastRemoval?: PrunePass;
}

const removedAny = (pass: PrunePass) =>
  pass.removed.succeeded + pass.removed.failed + pass.removed.deleted > 0;

/** Reads the recorded passes; null before the first pass (or when the record is unreadable). */
export async function readPrunePasses(storage: Storage): Promise<PrunePasses | null> {
  const record = await storage.settings.get(PRUNE_ID);
  return record ? passesOf(record) : null;
}

function passesOf(record: RecurringRecord): PrunePasses | null {
  const last = passOf(record.last);
  if (!last) return null;
  const lastRemoval = passOf(record.lastRemoval);
  return lastRemoval ? { last, lastRemoval } : { last };
}

function passOf(value: unknown): PrunePass | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const pass = value as Partial<PrunePass>;
  const removed = pass.removed;
  if (typeof pass.at !== "number" || typeof pass.by !== "string" || !removed) return undefined;
  const n = (v: unknown) => typeof v === "number" && Number.isFinite(v) ? v : 0;
  return {
    at: pass.at,
    by: pass.by,
    removed: {
      succeeded: n(removed.succeeded),
      failed: n(removed.failed),
      deleted: n(removed.deleted),
    },
    kept: n(pass.kept),
    ...(typeof pass.everyMs === "number" ? { everyMs: pass.everyMs } : {}),
    ...(typeof pass.problem === "string" ? { problem: pass.problem } : {}),
  };
}

/**
 * Records `pass` as the last one (and as the last removal when it removed any), unless a newer
 * pass is recorded already. Compare-and-set, a few tries; returns whether it was written.
 */
export async function recordPrunePass(storage: Storage, pass: PrunePass): Promise<boolean> {
  for (let tries = 0; tries < 5; tries++) {
    const current = await storage.settings.get(PRUNE_ID);
    const passes = current ? passesOf(current) : null;
    const last = passes && passes.last.at > pass.at ? passes.last : pass;
    const older = passes?.lastRemoval;
    const lastRemoval = removedAny(pass) && !(older && older.at > pass.at) ? pass : older;
    if (last !== pass && lastRemoval !== pass) return false;
    const record: RecurringRecord = {
      id: PRUNE_ID,
      version: (current?.version ?? 0) + 1,
      last,
      ...(lastRemoval ? { lastRemoval } : {}),
    };
    if (await storage.settings.put(record, current?.version ?? 0)) return true;
  }
  return false;
}
