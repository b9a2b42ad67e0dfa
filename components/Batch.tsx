/**
 * @module
 * A batch's progress, shared by the batch pages.
 */

import type { BatchStatus } from "../lib/batch.ts";
import { count } from "./format.ts";

/** A progress bar of a batch's end states. */
export function Progress({ status }: { status: BatchStatus }) {
  const { counts, batch } = status;
  const pct = (n: number) => `${Math.round((n / Math.max(1, batch.total)) * 100)}%`;
  return (
    <span
      class="progress-bar"
      title={`${counts.succeeded} succeeded, ${counts.failed} failed, ${counts.deleted} deleted of ${batch.total}`}
    >
      <progress max={batch.total} value={status.done}>{pct(status.done)}</progress>{" "}
      {count(status.done)} / {count(batch.total)}
      {counts.failed > 0 && <span class="reason">({count(counts.failed)} failed)</span>}
    </span>
  );
}
