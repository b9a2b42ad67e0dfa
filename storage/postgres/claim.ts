/**
 * @module
 * Claims on PostgreSQL: one transaction takes a batch of ready jobs per queue in one statement
 * (`FOR UPDATE SKIP LOCKED`: concurrent claimers take different jobs and never wait on each
 * other), lib builds each claim commit, and the `append` function writes them before COMMIT.
 */

import type { JobRecord } from "../../lib/job.ts";
import { parsedRecord } from "../stored_record.ts";
import type { Cap, ClaimBuilder, ClaimQuery, ClaimResult, Commit } from "../storage.ts";
import { append } from "./append.ts";
import { counter, type PgDb, retrying, transaction } from "./db.ts";

/** Most jobs one claim takes (the worker calls again for more). */
const MAX_CLAIM = 500;

/** Claims up to `query.limit` ready jobs of `query.queues` (queue order, then claim order). */
export function claim(db: PgDb, query: ClaimQuery, build: ClaimBuilder): Promise<ClaimResult> {
  return retrying(db, () =>
    transaction(db, async (q) => {
      const commits: Commit[] = [];
      const caps = new Map<Commit, Cap>();
      const befores = new Map<Commit, JobRecord | null>();
      let left = Math.max(0, Math.min(query.limit, MAX_CLAIM));
      for (const queue of query.queues) {
        if (left <= 0) break;
        const max = query.caps?.[queue];
        let limit = left;
        if (max !== undefined) {
          const { rows } = await q.query(
            `select coalesce(sum(n), 0)::int as n from ${db.s}.counters where name = $1`,
            [counter.gauge(queue, "Processing")],
          );
          limit = Math.min(limit, max - rows[0].n);
          if (limit <= 0) continue;
        }
        const { rows } = await q.query(
          `select id, record from ${db.s}.jobs where state = 'Enqueued' and queue = $1
           order by rank, state_at, id limit $2 for update skip locked`,
          [queue, limit],
        );
        for (const row of rows) {
          const record = parsedRecord(row.id, row.record)!;
          const commit = build(record);
          if (!commit) continue;
          commits.push(commit);
          befores.set(commit, record);
          left--;
          // Only a claim takes a slot (an expired job's deletion does not).
          if (commit.record.state === "Processing" && max !== undefined) {
            caps.set(commit, { queue, max });
          }
        }
      }
      if (!commits.length) return { claimed: [], contended: false };
      const results = await append(
        { ...db, q, inTransaction: true },
        commits.map((commit) => ({ commits: [commit], cap: caps.get(commit) })),
        { befores },
      );
      const claimed = commits.filter((_, i) => results[i].ok);
      const raced = results.some((result) => !result.ok && !result.limited);
      return { claimed, contended: raced };
    }));
}
