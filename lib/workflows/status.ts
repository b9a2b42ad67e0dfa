/**
 * @module
 * A flow's progress: its record, its nodes' end-state counts (a projection moved in each
 * node's own commits, as a batch member's), and its root's state.
 */

import type { BatchCounts, Storage } from "../../storage/storage.ts";
import type { JobRecord } from "../job.ts";
import { checkLimit, readOptions } from "../options.ts";
import { FINAL_STATES } from "../states.ts";
import type { FlowRecord } from "./flow.ts";

/** A flow with its progress. */
export interface FlowStatus {
  /** The stored flow. */
  flow: FlowRecord;
  /** Nodes now in each end state. */
  counts: BatchCounts;
  /** Nodes in an end state. */
  done: number;
  /** Nodes that ended Failed or Deleted. */
  failed: number;
  /** The root's state (absent once pruned). */
  root?: JobRecord["state"];
  /** True once the root is in an end state. */
  finished: boolean;
}

/** A flow's progress from its record (one read of its counts and one of its root). */
export async function flowStatus(storage: Storage, id: string): Promise<FlowStatus | null> {
  const flow = await storage.flows.get(id) as FlowRecord | null;
  return flow ? await statusOfFlow(storage, flow) : null;
}

/** The progress of a flow record already read. */
export async function statusOfFlow(storage: Storage, flow: FlowRecord): Promise<FlowStatus> {
  const [counts, root] = await Promise.all([
    storage.batchCounts(`flow/${flow.id}`),
    storage.get(flow.id),
  ]);
  const done = counts.succeeded + counts.failed + counts.deleted;
  const status: FlowStatus = {
    flow,
    counts,
    done,
    failed: counts.failed + counts.deleted,
    finished: root ? FINAL_STATES.includes(root.state) : done >= flow.total,
  };
  if (root) status.root = root.state;
  return status;
}

/** The newest flows (at most `limit`) with their progress, newest first. */
export async function listFlows(
  storage: Storage,
  options: { limit?: number } = {},
): Promise<FlowStatus[]> {
  const read = readOptions(options, { call: "flows", allowed: ["limit"] });
  const limit = checkLimit(read.limit, "flows limit") ?? 200;
  const flows = (await storage.flows.list() as FlowRecord[])
    .sort((a, b) => b.createdAt - a.createdAt).slice(0, limit);
  return await Promise.all(flows.map((flow) => statusOfFlow(storage, flow)));
}
