/**
 * @module
 * The Redis append path: changes are packed into calls of the append script (bounded in size),
 * sent in order and pipelined, and each reply is read back as applied or refused; refused
 * calls' other changes go again. A claim is one call that also returns the next ready records.
 */

import { beforesOf } from "../befores.ts";
import type { JobRecord } from "../../lib/job.ts";
import { checkChange } from "../effects.ts";
import type { AppendResult, Change, Commit } from "../storage.ts";
import { AppendCall, gaugeField } from "./append_call.ts";
import { type RedisDb, SCRIPTS } from "./context.ts";
import { type Keys, READY_ID_AT } from "./keys.ts";
import type { Reply } from "./protocol.ts";
import { getMany } from "./reads.ts";

/** Most arguments and characters sent in one append call; larger appends take several. */
const MAX_CALL_ARGS = 20_000;
const MAX_CALL_CHARS = 4 * 1024 * 1024;
/** Most changes per call: a larger append is split, so Redis runs one while the next is encoded. */
const PIPELINE_CHANGES = 250;

/** A claim: commits apply only to the first `head` ready jobs of `queues`; `peek` come back. */
export interface ClaimCall {
  queues: readonly string[];
  head: number;
  peek: number;
  /** Global concurrency limits by queue: the head and peek take no more than fit. */
  caps?: Readonly<Record<string, number>>;
}

/** Options of {@link append}. */
export interface AppendOptions {
  /** Rebuild: no log, stream or wake-up is written. */
  replay?: boolean;
  /** A claim (one call; the caller keeps it small). */
  claim?: ClaimCall;
}

/** A packed call and the indexes (into the changes) of the changes it holds. */
interface Packed {
  call: AppendCall;
  indexes: number[];
}

/**
 * Appends `changes` in calls of the append script. A call applies all its changes or none: the
 * changes it refuses get their conflicts, and the rest go again in a new call.
 */
export async function append(
  db: RedisDb,
  changes: readonly Change[],
  options: AppendOptions = {},
): Promise<{ results: AppendResult[]; records: string[] }> {
  const results: AppendResult[] = new Array(changes.length);
  const befores = await readBefores(db, changes, results);
  let pending: number[] = [];
  for (let i = 0; i < changes.length; i++) if (!results[i]) pending.push(i);
  let records: string[] = [];
  for (let round = 0;; round++) {
    const calls: Promise<number[]>[] = [];
    for (const packed of pack(db.keys, changes, pending, befores, options, round === 0)) {
      calls.push(
        send(db, packed, options.claim).then((reply) => {
          const read = readReply(reply, packed.indexes, results);
          records = read.records;
          return read.again;
        }),
      );
    }
    // Every call settles before this returns (none is left running unobserved); the first
    // failure is the one reported. One call (a single caller's) needs no gathering.
    if (calls.length === 1) pending = await calls[0];
    else pending = await settle(calls);
    if (!pending.length) return { results, records };
  }
}

/** The calls' changes to send again once every call has settled; throws the first failure. */
async function settle(calls: Promise<number[]>[]): Promise<number[]> {
  const settled = await Promise.allSettled(calls);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  return settled.flatMap((s) => (s as PromiseFulfilledResult<number[]>).value);
}

/**
 * Packs the `pending` changes into calls, yielding each as soon as it is full, so that it is
 * sent while the next is encoded. A job goes in at most one change of a call. A claim is one
 * call, sent even when empty in its first round (it then only peeks).
 */
function* pack(
  keys: Keys,
  changes: readonly Change[],
  pending: readonly number[],
  befores: Map<Commit, JobRecord | null>,
  options: AppendOptions,
  first: boolean,
): Generator<Packed> {
  let packed: Packed = { call: new AppendCall(keys, options.replay), indexes: [] };
  for (const index of pending) {
    const { call } = packed;
    const full = call.args > MAX_CALL_ARGS || call.chars > MAX_CALL_CHARS ||
      call.changes >= PIPELINE_CHANGES;
    if ((full || call.holds(changes[index].commits)) && !options.claim) {
      yield packed;
      packed = { call: new AppendCall(keys, options.replay), indexes: [] };
    }
    packed.call.add(
      changes[index].commits.map((commit) => ({ commit, before: befores.get(commit)! })),
      changes[index],
    );
    packed.indexes.push(index);
  }
  if (packed.indexes.length || (options.claim && first)) yield packed;
}

/** Sends one call (see the script's header for the order of its arguments). */
function send(db: RedisDb, { call }: Packed, claim: ClaimCall | undefined): Promise<Reply> {
  const k = db.keys;
  if (!claim && call.creates) {
    const wake = call.wake ? k.wake : "";
    const header = [k.pos, k.feed, k.done, k.jobs, k.prefix, wake, call.createdWakeMessage];
    const parts = [header, call.created(), call.createClaims(), call.operations(false)];
    return SCRIPTS.create.run(db.conn, parts);
  }
  const { queues = [], head = 0, peek = 0, caps } = claim ?? {};
  const header = [
    k.pos,
    k.feed,
    k.jobs,
    k.done,
    k.prefix,
    call.wake ? k.wake : "",
    call.wakeMessage,
    String(queues.length),
  ];
  for (const queue of queues) header.push(k.ready(queue));
  if (queues.length) header.push(String(head), String(peek), String(READY_ID_AT));
  for (const queue of queues) {
    const max = caps?.[queue];
    if (max === undefined) header.push("", "");
    else header.push(String(max), gaugeField(queue, "Processing"));
  }
  header.push(
    String(call.caps.length / 3),
    ...call.caps,
    String(call.puts.length / 4),
    ...call.puts,
  );
  header.push(String(call.changes));
  return SCRIPTS.append.run(db.conn, [header, call.commits, call.claims(), call.operations()]);
}

/**
 * Reads a call's reply into `results`. Refused: `[per-change conflicts]`, and the changes
 * without conflicts come back to go again; applied: the peeked records' JSON (parsed by the
 * claim that takes them: overlapping claims leave many of them to the next answer).
 */
function readReply(
  reply: Reply,
  indexes: readonly number[],
  results: AppendResult[],
): { again: number[]; records: string[] } {
  const replies = reply as Reply[];
  if (replies.length === 1 && Array.isArray(replies[0])) {
    const again: number[] = [];
    (replies[0] as string[][]).forEach((conflicts, i) => {
      if (conflicts[0] === "") results[indexes[i]] = { ok: false, conflicts: [], limited: true };
      else if (conflicts.length) results[indexes[i]] = { ok: false, conflicts };
      else again.push(indexes[i]);
    });
    return { again, records: [] };
  }
  for (const index of indexes) results[index] = { ok: true };
  const records = (replies as (string | null)[]).filter((json): json is string => json !== null);
  return { again: [], records };
}

/** The records the commits were built on (see `beforesOf`), malformed commits refused first. */
function readBefores(
  db: RedisDb,
  changes: readonly Change[],
  results: AppendResult[],
): Promise<Map<Commit, JobRecord | null>> {
  // A malformed commit is refused before anything is sent.
  changes.forEach(checkChange);
  return beforesOf(changes, results, (ids) => getMany(db, ids));
}
