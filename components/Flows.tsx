/**
 * @module
 * A flow's progress, shared by the Flows page.
 */

import type { FlowStatus } from "../lib/mod.ts";
import { count } from "./format.ts";

/** A progress bar of a flow's nodes in end states. */
export function FlowProgress({ status }: { status: FlowStatus }) {
  const { counts, flow, done } = status;
  const pct = Math.round((done / Math.max(1, flow.total)) * 100);
  return (
    <span
      class="progress-bar"
      title={`${counts.succeeded} succeeded, ${counts.failed} failed, ${counts.deleted} deleted of ${flow.total}`}
    >
      <progress max={flow.total} value={done}>{pct}%</progress> {count(done)} / {count(flow.total)}
      {status.failed > 0 && <span class="reason">({count(status.failed)} failed or deleted)</span>}
    </span>
  );
}
