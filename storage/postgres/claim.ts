/**
 * @module
 * Claims on PostgreSQL: one transaction takes a batch of ready jobs per queue in one statement
 * (`FOR UPDATE SKIP LOCKED`: concurrent claimers take different jobs and never wait on each
 * other), lib builds each claim commit, and the `append` function writes them before COMMIT.
 * Two round trips once warm: `BEGIN` travels with the first select, `COMMIT` with the append
 * (simple-protocol statements, values as escaped literals).
 */

import type { JobRecord } from "../../lib/job.ts";
import { parsedRecord } from "../stored_record.ts";
import type { Cap, ClaimBuilder, ClaimQuery, ClaimResult, Commit } from "../storage.ts";
import { payloadOf } from "./append.ts";
import { checkedOut, counter, type PgDb, type PoolClient } from "./db.ts";

/** Most jobs one claim takes (the worker calls again for more). */
const MAX_CLAIM = 500;

/**
 * `text` as an SQL string literal, as the driver's `escapeLiteral` writes it but with two native
 * replaces instead of a loop over every character (the append payload is ~600 bytes a job).
 */
function literal(text: string): string {
  const quoted = `'${text.replaceAll("'", "''")}'`;
  return text.includes("\\") ? ` E${quoted.replaceAll("\\", "\\\\")}` : quoted;
}

/** The rows of the last statement of a (possibly multi-statement) simple query. */
function lastRows(result: unknown): any[] {
  const results = Array.isArray(result) ? result : [result];
  return (results.at(-1) as { rows: any[] }).rows;
}

/** Claims up to `query.limit` ready jobs of `query.queues` (queue order, then claim order). */
export async function claim(
  db: PgDb,
  query: ClaimQuery,
  build: ClaimBuilder,
): Promise<ClaimResult> {
  return await checkedOut(db, (client) => claimOn(client, db, query, build));
}

/** The claim's statements on `client`, in one transaction (BEGIN and COMMIT ride on them). */
async function claimOn(
  client: PoolClient,
  db: PgDb,
  query: ClaimQuery,
  build: ClaimBuilder,
): Promise<ClaimResult> {
  // A bitmap scan reads every entry of the ready index, the claimed jobs' dead ones too (until a
  // vacuum), where an index scan in claim order stops after `limit` live rows.
  let begin = "begin; set local enable_bitmapscan = off; ";
  const commits: Commit[] = [];
  const caps = new Map<Commit, Cap>();
  const befores = new Map<Commit, JobRecord | null>();
  let left = Math.max(0, Math.min(query.limit, MAX_CLAIM));
  for (const queue of query.queues) {
    if (left <= 0) break;
    const max = query.caps?.[queue];
    let limit = left;
    if (max !== undefined) {
      const gauge = counter.gauge(queue, "Processing");
      const rows = lastRows(
        await client.query(
          `${begin}select coalesce(sum(n), 0)::int as n from ${db.s}.counters
             where name = ${literal(gauge)}`,
        ),
      );
      begin = "";
      limit = Math.min(limit, max - rows[0].n);
      if (limit <= 0) continue;
    }
    const rows = lastRows(
      await client.query(
        `${begin}select id, record from ${db.s}.jobs where state = 'Enqueued'
           and queue = ${literal(queue)} order by rank, state_at, id limit ${Math.floor(limit)}
           for update skip locked`,
      ),
    );
    begin = "";
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
  if (!commits.length) {
    if (!begin) await client.query("commit");
    return { claimed: [], contended: false };
  }
  const changes = commits.map((commit) => ({ commits: [commit], cap: caps.get(commit) }));
  const payload = payloadOf(changes, changes.map((_, i) => i), befores, false);
  // The append's answer is the first result (the last is COMMIT's, without rows).
  const answers = await client.query(
    `select ${db.s}.append(${literal(payload.rest)}, ${literal(payload.commits)}, ${
      literal(payload.records)
    }, ${literal(payload.events!)}) as r; commit`,
  );
  const refused = (answers as unknown as { rows: any[] }[])[0].rows[0].r as
    | Record<string, string[]>
    | null;
  if (!refused) return { claimed: commits, contended: false };
  // The function wrote nothing: a cap refused some claims, or a job moved meanwhile.
  const limitedOnly = Object.values(refused).every((conflicts) => conflicts[0] === "");
  return { claimed: [], contended: !limitedOnly || changes.length > Object.keys(refused).length };
}
