/**
 * @module
 * The workers' recovery sweep for workflows: finishes releasing flows whose producer died after
 * opening them, and releases waiting jobs a cascade left for later (see `CHANGE_BUDGET`).
 */

import type { Storage } from "../../storage/storage.ts";
import { appendCommit } from "../commits.ts";
import { withContinuations } from "../changes.ts";
import { type FlowRecord, releaseFlow } from "./flow.ts";
import { releasable, releaseEvent } from "./release.ts";

/** Releases every waiting job that may go now, each with its followers; returns how many. */
export async function settleWaiting(storage: Storage, now: () => number): Promise<number> {
  let released = 0;
  let cursor: string | undefined;
  do {
    const page = await storage.list({ state: "Awaiting", cursor, limit: 500 });
    for (const record of page.jobs.filter(releasable)) {
      const at = now();
      const release = releaseEvent(record, at);
      if (!release) continue;
      const change = await withContinuations(storage, appendCommit(record, [release]), at);
      const [result] = await storage.append([change]);
      if (result.ok) released++; // else it moved meanwhile: whoever moved it decided
    }
    cursor = page.cursor;
  } while (cursor);
  return released;
}

/** One sweep: open flows not yet released whole, then waiting jobs left releasable. */
export async function sweepWorkflows(storage: Storage, now: () => number): Promise<void> {
  for (const flow of await storage.flows.list() as FlowRecord[]) {
    if (flow.state === "open" && !flow.released) await releaseFlow(storage, flow, now);
  }
  await settleWaiting(storage, now);
}
