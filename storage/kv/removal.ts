/**
 * @module
 * Removal of finished jobs for good (retention) on Deno KV: each job's row (record and log),
 * events in rows of their own, index entries and name entry are deleted and its gauge
 * decremented in one atomic write, checked against the row's versionstamp. A finished job holds
 * no lease (it lives in the Processing state entry the job left), as on Redis.
 */

import type { JobRecord } from "../../lib/job.ts";
import { dueEntry, historyOf, kept, readyEntry, removable } from "../effects.ts";
import { StorageUnavailableError } from "../errors.ts";
import type { Removal, RemoveResult } from "../storage.ts";
import { type KvDb, logOf } from "./maintenance.ts";
import { count, type Key, Sums, u64 } from "./projections.ts";
import { lastSeq, type Row, type RowEntry } from "./rows.ts";
import { MAX_CHECKS } from "./writer.ts";

/**
 * Most mutations of one atomic (KV allows 1,000): a job takes 5 and one per event in a row of
 * its own (none for the usual job, whose log fits its row).
 */
const MAX_MUTATIONS = 950;
/** Events in rows of their own an atomic deletes along with the rest of a job (see `trimLog`). */
const LOG_IN_ATOMIC = MAX_MUTATIONS - 10;
/** Most removals per call: one check each, and KV checks at most 100 per atomic. */
export const MAX_REMOVALS = MAX_CHECKS;

/** A counter delta with its key's name (the key as JSON: keys are named once per job). */
interface Named {
  name: string;
  key: Key;
  delta: number;
}

/** A job to remove: its row, its record, and its history's share of the pruned base. */
interface Doomed {
  entry: RowEntry & { row: Row };
  record: JobRecord;
  history: Named[];
  /** The unique key the job still holds, as read (removed with it, checked). */
  unique?: Deno.KvEntry<string>;
}

/** Removes finished jobs (the storage contract's `remove`). */
export async function remove(db: KvDb, removals: readonly Removal[]): Promise<RemoveResult> {
  const removed: string[] = [];
  const refused: string[] = [];
  let pending = removals;
  for (let attempt = 1; pending.length; attempt++) {
    // Rows listed just before (retention's scan) are not read again: a stale one fails its check.
    const entries = await db.known.current(
      pending.map(({ id, version }) => ({ id, expect: version })),
      (ids) => db.writer.readRecords(ids),
    );
    const checked = removable(
      pending,
      pending.map(({ id }) => entries.get(id)?.record ?? null),
      MAX_REMOVALS,
    );
    refused.push(...checked.refused);
    const keys = new BaseKeys(db);
    const jobs = await Promise.all(
      checked.records.map((record) => doomed(db, record, entries.get(record.id)!, keys)),
    );
    // A job whose log alone fills an atomic sheds its newest events first, each step checked
    // against the row (which does not change): an interrupted removal is finished by the next.
    for (const job of jobs) await trimLog(db, job);
    const outcome = await commitAll(db, jobs);
    removed.push(...outcome.removed);
    // A check failed: those jobs moved (or went) meanwhile; they are judged again, from a read.
    pending = pending.filter((r) => outcome.retry.includes(r.id));
    if (pending.length && attempt >= 50) {
      throw new StorageUnavailableError(db.writer.address, "jobs kept changing during a removal");
    }
  }
  return { removed, refused };
}

/**
 * A job to remove with its history (its log is in its row, but for events in rows of their own,
 * read before the atomic: the check of the row's versionstamp proves the log is still this one).
 * Time buckets past their keep are left out, as they would have expired.
 */
async function doomed(
  db: KvDb,
  record: JobRecord,
  entry: RowEntry,
  keys: BaseKeys,
): Promise<Doomed> {
  const row = entry.row!;
  const effects = historyOf(record, await logOf(db, record.id, row));
  const sums = new Sums(keys.nameOf);
  count(sums, keys.key, kept(effects, Date.now()));
  const history = [...sums.named()].map(([name, { key, delta }]) => ({ name, key, delta }));
  const job: Doomed = { entry: { ...entry, row }, record, history };
  const key = record.options.unique?.key;
  if (key !== undefined) {
    const held = await db.kv.get<string>(db.key("unique", key));
    if (held.value === record.id) job.unique = held as Deno.KvEntry<string>;
  }
  return job;
}

/**
 * The pruned base's keys of one remove call, each made and named (as JSON) once: most jobs of a
 * call share them, and naming every job's keys anew was a sixth of a KV prune's CPU.
 */
class BaseKeys {
  #db: KvDb;
  /** Keys by their parts, one level per part (a Map keeps 5 and "5" apart). */
  #root: KeyNode = { next: new Map() };
  #names = new Map<Key, string>();

  constructor(db: KvDb) {
    this.#db = db;
  }

  /** The pruned base's key of `parts`, the same array each time. */
  key = (...parts: Deno.KvKeyPart[]): Key => {
    let node = this.#root;
    for (const part of parts) {
      let next = node.next.get(part);
      if (!next) node.next.set(part, next = { next: new Map() });
      node = next;
    }
    if (!node.key) {
      node.key = this.#db.key("pruned", ...parts);
      this.#names.set(node.key, JSON.stringify(node.key));
    }
    return node.key;
  };

  /** The name of a key made by {@link BaseKeys.key} (any other key is named as JSON). */
  nameOf = (key: Key): string => this.#names.get(key) ?? JSON.stringify(key);
}

interface KeyNode {
  next: Map<Deno.KvKeyPart, KeyNode>;
  key?: Key;
}

/** Commits the removals of `jobs`, as few atomics as fit; returns those that went, and the rest. */
async function commitAll(
  db: KvDb,
  jobs: Doomed[],
): Promise<{ removed: string[]; retry: string[] }> {
  const removed: string[] = [], retry: string[] = [];
  // Mutations: each job's own, one per counter (gauge, pruned base) moved, and the pruned total.
  let batch: Doomed[] = [], mutations = 1, checks = 0, counters = new Set<string>();
  const flush = async () => {
    if (!batch.length) return;
    const ok = (await db.writer.commit(removalAtomic(db, batch))).ok;
    (ok ? removed : retry).push(...batch.map((job) => job.record.id));
    batch = [];
    mutations = 1;
    checks = 0;
    counters = new Set();
  };
  for (const job of jobs) {
    const record = job.record;
    const names = [`${record.queue}\n${record.state}`, ...job.history.map(({ name }) => name)];
    const size = () => mutationsOf(job) + names.filter((n) => !counters.has(n)).length;
    // A held unique key is one more check (KV takes 100 per atomic).
    const checked = job.unique ? 2 : 1;
    if (mutations + size() > MAX_MUTATIONS || checks + checked > MAX_CHECKS) await flush();
    mutations += size();
    checks += checked;
    batch.push(job);
    for (const name of names) counters.add(name);
  }
  await flush();
  return { removed, retry };
}

/** Mutations removing a job takes: row, state, name, ready, due, and its own events. */
function mutationsOf(job: Doomed): number {
  const { first, last } = ownEvents(job);
  return 5 + Number(job.unique !== undefined) +
    Math.max(0, Math.min(last - first + 1, LOG_IN_ATOMIC));
}

/** Sequence numbers of a job's events in rows of their own (none: first > last). */
function ownEvents({ entry, record }: Doomed): { first: number; last: number } {
  return entry.row[2] === 1
    ? { first: lastSeq(entry.row) + 1, last: record.version }
    : { first: 1, last: 0 };
}

/**
 * The atomic removing `jobs`: every key of each, checked against its record's versionstamp;
 * their history goes into the pruned base.
 */
function removalAtomic(db: KvDb, jobs: Doomed[]): Deno.AtomicOperation {
  const { kv, key } = db;
  const atomic = kv.atomic();
  const sums = new Sums();
  const base = new Map<string, Named>();
  for (const job of jobs) {
    const { entry, record, history } = job;
    for (const named of history) {
      const summed = base.get(named.name);
      if (summed) summed.delta += named.delta;
      else base.set(named.name, { ...named });
    }
    const id = record.id;
    atomic.check(entry).delete(entry.key);
    // Events past LOG_IN_ATOMIC of them went before, in `trimLog`.
    const own = ownEvents(job);
    const last = Math.min(own.last, own.first + LOG_IN_ATOMIC - 1);
    for (let seq = own.first; seq <= last; seq++) atomic.delete(key("ev", id, seq));
    atomic.delete(key("state", record.state, record.stateAt, id));
    const ready = readyEntry(record), due = dueEntry(record);
    if (ready) atomic.delete(key("ready", ready.queue, ready.rank, ready.at, id));
    if (due) atomic.delete(key("due", due.runAt, id));
    atomic.delete(key("name", record.name, -record.createdAt, id));
    if (job.unique) atomic.check(job.unique).delete(job.unique.key);
    sums.add(key("gauge", record.queue, record.state), -1);
    sums.add(key("total", "pruned"), 1);
  }
  for (const { key, delta } of [...base.values(), ...sums.values()]) {
    if (delta !== 0) atomic.sum(key, u64(delta));
  }
  return atomic;
}

/** Deletes the newest events of a job whose removal would not fit one atomic, step by step. */
async function trimLog(db: KvDb, job: Doomed): Promise<void> {
  const { entry, record } = job;
  const keep = ownEvents(job).first + LOG_IN_ATOMIC - 1;
  for (let last = record.version; last > keep;) {
    const from = Math.max(keep + 1, last - MAX_MUTATIONS + 2);
    const atomic = db.kv.atomic().check(entry);
    for (let seq = from; seq <= last; seq++) atomic.delete(db.key("ev", record.id, seq));
    // A failed check: the job moved on; the removal's own check refuses it next.
    if (!(await db.writer.commit(atomic)).ok) return;
    last = from - 1;
  }
}
