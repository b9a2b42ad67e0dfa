/**
 * @module
 * Retention on Redis: finished jobs oldest first, and their removal for good (one call of the
 * remove script per `remove`).
 */

import type { JobRecord } from "../../lib/job.ts";
import { badCursor, decodeCursor, encodeCursor } from "../cursor.ts";
import { removable } from "../effects.ts";
import { CorruptRecordError } from "../errors.ts";
import { decodeCollapsedRecord } from "../log_codec.ts";
import type { FinishedQuery, Page, Removal, RemoveResult } from "../storage.ts";
import { gaugeField, nameMember } from "./append_call.ts";
import { command, type RedisDb, script } from "./context.ts";
import { type Keys, STATE_ID_AT, stateMember } from "./keys.ts";
import { PrunedBase } from "./pruned_base.ts";
import { page } from "./reads.ts";

/** A finished job as its done field holds it: the position, the record, the text after it. */
interface Collapsed {
  position: string;
  record: JobRecord;
  /** The record line and the log (read for the pruned base only). */
  log: string;
}

/** Most arguments of one operation (the script passes them to `unpack`). */
const OP_ARGS = 1_000;

/** Most removals per call: one script call removes them all. */
export const MAX_REMOVALS = 500;

/** Jobs in a final state, oldest first, entered at or before `before`. */
export async function finished(db: RedisDb, query: FinishedQuery): Promise<Page> {
  const limit = query.limit ?? 100;
  let after: string | undefined;
  if (query.cursor !== undefined) {
    const key = decodeCursor(query.cursor);
    if (key.length !== 1 || typeof key[0] !== "string" || !/^\d{16}/.test(key[0])) {
      throw badCursor(query.cursor);
    }
    after = key[0];
  }
  const [members, records, texts] = await page(db, db.keys.state(query.state), {
    start: after ? `(${after}` : "-",
    // Members are the time of entering the state, then the id: all of `before` sort below this.
    stop: `(${stateMember(Math.floor(query.before) + 1, "")}`,
    limit,
    idAt: STATE_ID_AT,
    records: [db.keys.done, db.keys.jobs],
  });
  const result: Page = { jobs: records.filter((r): r is JobRecord => r !== null) };
  if (members.length === limit) result.cursor = encodeCursor([members[members.length - 1]]);
  db.finished = new Map();
  records.forEach((record, i) => {
    const text = texts[i]!;
    if (record && !text.startsWith("{")) db.finished!.set(record.id, { text, record });
  });
  return result;
}

/**
 * The finished jobs of `removals` (null where absent, live or unreadable: those are refused):
 * from the last page `finished` read when it has them at the version asked for (its record
 * reused), else read.
 */
async function readable(
  db: RedisDb,
  removals: readonly Removal[],
): Promise<(Collapsed | null)[]> {
  const decode = (id: string, text: string | null | undefined, record?: JobRecord) => {
    const at = text?.indexOf("\n") ?? -1;
    if (at < 0) return null;
    try {
      const log = text!.slice(at + 1);
      return {
        position: text!.slice(0, at),
        record: record ?? decodeCollapsedRecord(id, log),
        log,
      };
    } catch {
      return null;
    }
  };
  const recent = db.finished;
  db.finished = undefined;
  const jobs = removals.map(({ id, version }): Collapsed | null | undefined => {
    const read = recent?.get(id);
    return read?.record.version === version ? decode(id, read.text, read.record) : undefined;
  });
  const unread = removals.filter((_, i) => jobs[i] === undefined).map((r) => r.id);
  if (unread.length) {
    const found = await command(db, "HMGET", db.keys.done, ...unread) as (string | null)[];
    let u = 0;
    jobs.forEach((job, i) => {
      if (job === undefined) jobs[i] = decode(removals[i].id, found[u++]);
    });
  }
  return jobs as (Collapsed | null)[];
}

/**
 * Removes finished jobs (the storage contract's `remove`): one read of their done fields, then
 * one script call that checks every position and applies the merged writes, or refuses the
 * whole call and names the jobs that moved on; those are refused and the rest go again.
 */
export async function remove(db: RedisDb, removals: readonly Removal[]): Promise<RemoveResult> {
  const read = await readable(db, removals);
  const byId = new Map(read.flatMap((job) => job ? [[job.record.id, job]] : []));
  const { records, refused } = removable(
    removals,
    read.map((job) => job?.record ?? null),
    MAX_REMOVALS,
  );
  let { pending, base } = baseOf(records, byId, refused);
  while (pending.length) {
    const args = removeArgs(db.keys, pending, byId, base);
    const moved = await script(db, "remove", args) as string[];
    if (!moved.length) break;
    const gone = new Set(moved);
    refused.push(...moved);
    ({ pending, base } = baseOf(pending.filter((record) => !gone.has(record.id)), byId, []));
  }
  return { removed: pending.map((record) => record.id), refused };
}

/**
 * The pruned base of `records` (their share of the history), and those of them it counts: a
 * job whose log does not read as events is refused (pushed to `refused`), as an unreadable
 * record is, and the base is summed again without it.
 */
function baseOf(
  records: JobRecord[],
  byId: Map<string, Collapsed>,
  refused: string[],
): { pending: JobRecord[]; base: PrunedBase } {
  for (let pending = records;;) {
    const base = new PrunedBase(Date.now());
    let at = 0;
    try {
      for (; at < pending.length; at++) base.add(pending[at], byId.get(pending[at].id)!.log);
      return { pending, base };
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error;
      refused.push(pending[at].id);
      pending = pending.filter((_, i) => i !== at);
    }
  }
}

/** The remove script's arguments for `records` (see its header), `base` their pruned base. */
function removeArgs(
  k: Keys,
  records: readonly JobRecord[],
  byId: Map<string, Collapsed>,
  base: PrunedBase,
): string[] {
  const args = [k.done, k.prefix, String(records.length)];
  const ops = new Ops();
  const names: string[] = [];
  const members = new Map<string, string[]>();
  const uniques: string[] = [];
  for (const record of records) {
    const job = byId.get(record.id)!;
    args.push(record.id, job.position);
    names.push(nameMember(record.name, record.createdAt, record.id));
    const inState = members.get(record.state);
    const member = stateMember(record.stateAt, record.id);
    if (inState) inState.push(member);
    else members.set(record.state, [member]);
    ops.count(k.gauges, gaugeField(record.queue, record.state), -1);
    const unique = record.options.unique?.key;
    // The key goes only while the job still holds it (a newer job may have taken it over).
    if (unique !== undefined) uniques.push(unique, record.id);
  }
  ops.add("ZREM", k.names, names);
  if (uniques.length) ops.add("HDELIF", k.unique, uniques);
  for (const [state, list] of members) ops.add("ZREM", k.state(state), list);
  ops.count(k.totals, "pruned", records.length);
  base.write(k, ops);
  return [...args, ...ops.flat()];
}

/** Writes merged per key (and per field for increments), as the remove script takes them. */
class Ops {
  #members = new Map<string, string[]>();
  #counts = new Map<string, Map<string, { n: number; expiry: string }>>();

  /** Members or fields for `command` (HDEL, ZREM) on `key` (each key once per call). */
  add(command: string, key: string, members: string[]): void {
    this.#members.set(`${command} ${key}`, members);
  }

  /** An increment of `field` of hash `key`, which then expires at `expiry` ("" for never). */
  count(key: string, field: string, increment: number, expiry = ""): void {
    let fields = this.#counts.get(key);
    if (!fields) this.#counts.set(key, fields = new Map());
    const op = fields.get(field);
    if (op) op.n += increment;
    else fields.set(field, { n: increment, expiry });
  }

  /** Number of operations, then per operation: command, key, number of arguments, arguments. */
  flat(): string[] {
    const out: string[] = [];
    for (const [name, members] of this.#members) {
      const at = name.indexOf(" ");
      for (let s = 0; s < members.length; s += OP_ARGS) {
        const part = members.slice(s, s + OP_ARGS);
        out.push(name.slice(0, at), name.slice(at + 1), String(part.length), ...part);
      }
    }
    for (const [key, fields] of this.#counts) {
      let expiry = "";
      for (const [field, op] of fields) {
        if (op.n !== 0) out.push("HINCRBY", key, "2", field, String(op.n));
        expiry ||= op.expiry;
      }
      if (expiry) out.push("PEXPIREAT", key, "1", expiry);
    }
    let count = 0;
    for (let o = 0; o < out.length; o += 3 + Number(out[o + 2])) count++;
    return [String(count), ...out];
  }
}
