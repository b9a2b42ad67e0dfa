/**
 * @module
 * Removal of finished jobs for good (retention) on Deno KV: each job's record, log, index
 * entries, lease and name entry are deleted and its gauge decremented in one atomic write,
 * checked against the record's versionstamp.
 */

import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import { dueEntry, historyOf, keptBuckets, readyEntry, removable } from "../effects.ts";
import { StorageUnavailableError } from "../errors.ts";
import type { Removal, RemoveResult } from "../storage.ts";
import type { KvDb } from "./maintenance.ts";
import { count, type Key, Sums, u64 } from "./projections.ts";
import { MAX_CHECKS } from "./writer.ts";

/**
 * Most mutations of one atomic (KV allows 1,000): a job takes 5 and one per event, so 100
 * finished jobs of the usual 4 to 6 events fit one atomic with their counters.
 */
const MAX_MUTATIONS = 950;
/** Events of one job an atomic deletes along with the rest of it (see `trimLog`). */
const LOG_IN_ATOMIC = MAX_MUTATIONS - 10;
/** Most removals per call: one check each, and KV checks at most 100 per atomic. */
export const MAX_REMOVALS = MAX_CHECKS;

type Entry = Deno.KvEntry<JobRecord>;
/** A job to remove: its record entry, and its history's share of the pruned base. */
interface Doomed {
  entry: Entry;
  history: Array<{ key: Key; delta: number }>;
}

/** Removes finished jobs (the storage contract's `remove`). */
export async function remove(db: KvDb, removals: readonly Removal[]): Promise<RemoveResult> {
  const removed: string[] = [];
  const refused: string[] = [];
  let pending = removals;
  for (let attempt = 1; pending.length; attempt++) {
    const entries = await db.writer.readRecords(pending.map((r) => r.id));
    const checked = removable(
      pending,
      pending.map(({ id }) => entries.get(id)?.value ?? null),
      MAX_REMOVALS,
    );
    refused.push(...checked.refused);
    const jobs = await Promise.all(
      checked.records.map((record) => doomed(db, entries.get(record.id) as Entry)),
    );
    // A job whose log alone fills an atomic sheds its newest events first, each step checked
    // against the record (which does not change): an interrupted removal is finished by the next.
    for (const { entry } of jobs) await trimLog(db, entry);
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
 * A job to remove with its history (read before the atomic: the atomic's check of the record's
 * versionstamp proves the log is still this one, since a log only grows with its record).
 * Time buckets past their keep are left out, as they would have expired.
 */
async function doomed(db: KvDb, entry: Entry): Promise<Doomed> {
  const { kv, key } = db;
  const log = await Array.fromAsync(kv.list<JobEvent>({ prefix: key("ev", entry.value.id) }));
  const effects = historyOf(entry.value, log.map((e) => e.value));
  const sums = new Sums();
  const pruned = (...parts: Deno.KvKeyPart[]) => key("pruned", ...parts);
  count(sums, pruned, { ...effects, buckets: keptBuckets(effects.buckets, Date.now()) });
  return { entry, history: [...sums.values()] };
}

/** Commits the removals of `jobs`, as few atomics as fit; returns those that went, and the rest. */
async function commitAll(
  db: KvDb,
  jobs: Doomed[],
): Promise<{ removed: string[]; retry: string[] }> {
  const removed: string[] = [], retry: string[] = [];
  // Mutations: each job's own, one per counter (gauge, pruned base) moved, and the pruned total.
  let batch: Doomed[] = [], mutations = 1, counters = new Set<string>();
  const flush = async () => {
    if (!batch.length) return;
    const ok = (await db.writer.commit(removalAtomic(db, batch))).ok;
    (ok ? removed : retry).push(...batch.map((job) => job.entry.value.id));
    batch = [];
    mutations = 1;
    counters = new Set();
  };
  for (const job of jobs) {
    const record = job.entry.value;
    const names = [
      `${record.queue}\n${record.state}`,
      ...job.history.map(({ key }) => JSON.stringify(key)),
    ];
    const size = () => mutationsOf(record) + names.filter((n) => !counters.has(n)).length;
    if (mutations + size() > MAX_MUTATIONS) await flush();
    mutations += size();
    batch.push(job);
    for (const name of names) counters.add(name);
  }
  await flush();
  return { removed, retry };
}

/** Mutations removing `record` takes: record, state, lease, name, ready, due, and its log. */
function mutationsOf(record: JobRecord): number {
  return 6 + Math.min(record.version, LOG_IN_ATOMIC);
}

/**
 * The atomic removing `jobs`: every key of each, checked against its record's versionstamp;
 * their history goes into the pruned base.
 */
function removalAtomic(db: KvDb, jobs: Doomed[]): Deno.AtomicOperation {
  const { kv, key } = db;
  const atomic = kv.atomic();
  const sums = new Sums();
  for (const { entry, history } of jobs) {
    for (const { key, delta } of history) sums.add(key, delta);
    const record = entry.value;
    const id = record.id;
    atomic.check(entry).delete(entry.key);
    // Events past LOG_IN_ATOMIC went before, in `trimLog`.
    const events = Math.min(record.version, LOG_IN_ATOMIC);
    for (let seq = 1; seq <= events; seq++) atomic.delete(key("ev", id, seq));
    atomic.delete(key("state", record.state, record.stateAt, id));
    const ready = readyEntry(record), due = dueEntry(record);
    if (ready) atomic.delete(key("ready", ready.queue, ready.rank, ready.at, id));
    if (due) atomic.delete(key("due", due.runAt, id));
    atomic.delete(key("lease", id));
    atomic.delete(key("name", record.name, -record.createdAt, id));
    sums.add(key("gauge", record.queue, record.state), -1);
    sums.add(key("total", "pruned"), 1);
  }
  for (const { key, delta } of sums.values()) {
    if (delta !== 0) atomic.sum(key, u64(delta));
  }
  return atomic;
}

/** Deletes the newest events of a job whose removal would not fit one atomic, step by step. */
async function trimLog(db: KvDb, entry: Entry): Promise<void> {
  const keep = LOG_IN_ATOMIC;
  for (let last = entry.value.version; last > keep;) {
    const from = Math.max(keep + 1, last - MAX_MUTATIONS + 2);
    const atomic = db.kv.atomic().check(entry);
    for (let seq = from; seq <= last; seq++) atomic.delete(db.key("ev", entry.value.id, seq));
    // A failed check: the job moved on; the removal's own check refuses it next.
    if (!(await db.writer.commit(atomic)).ok) return;
    last = from - 1;
  }
}
