/**
 * @module
 * KV maintenance: rebuild (every projection recomputed from the event logs) and pruning of old
 * time buckets, written as unchecked atomics of a bounded size.
 */

import type { JobEvent } from "../../lib/events.ts";
import type { Lease } from "../../lib/projection.ts";
import type { JobRecord } from "../../lib/job.ts";
import { createdLater, effectsOf, kept } from "../effects.ts";
import { STAT_RESOLUTIONS } from "../stats.ts";
import { type Derive, type RebuildResult, type Resolution, RESOLUTIONS } from "../storage.ts";
import { count, type Key, type KeyOf, moveIndexes, Sums, u64 } from "./projections.ts";
import type { KnownRecords } from "./known.ts";
import { isRow, type Row, rowEvents, withRecord } from "./rows.ts";
import { type KvWriter, MAX_BYTES } from "./writer.ts";

/** The database, its keys, its writer and the records it knows. */
export interface KvDb {
  kv: Deno.Kv;
  key: KeyOf;
  writer: KvWriter;
  known: KnownRecords;
}

/** Recomputes every projection from the event logs (the storage contract's `rebuild`). */
export async function rebuild(db: KvDb, derive: Derive): Promise<RebuildResult> {
  const { kv, key } = db;
  // Leases as stored: in Processing state entries.
  const leases = new Map<string, Lease>();
  for await (const entry of kv.list<Lease | null>({ prefix: key("state", "Processing") })) {
    if (entry.value) leases.set(entry.key[4] as string, entry.value);
  }
  // Removed jobs left no log to count them from: their count is kept as it was.
  const pruned = (await kv.get<Deno.KvU64>(key("total", "pruned"))).value?.value ?? 0n;
  const rooms = [
    "state",
    "ready",
    "due",
    "gauge",
    "total",
    "bucket",
    "stat",
    "name",
    "duration",
    "unique",
  ];
  for (const room of [...rooms, "duration_ms", "retrying", "batchcount"]) {
    await deletePrefix(db, key(room));
  }
  // Counters are summed in memory and written once each: a rebuild is one writer, offline.
  const sums = new Sums();
  if (pruned > 0n) sums.add(key("total", "pruned"), Number(pruned));
  await addPrunedBase(db, sums);
  const sink = new BufferedWriter(kv, (a) => db.writer.commitOrThrow(a));
  let jobs = 0;
  const skipped: string[] = [];
  // Each unique key goes to the job with it created last (see the storage contract).
  const holders = new Map<string, Pick<JobRecord, "createdAt" | "id">>();
  for await (const entry of kv.list({ prefix: key("job") })) {
    const id = entry.key[2] as string;
    const row = entry.value;
    // A value that is no row holds no log to rebuild from; a broken log keeps its row, bare.
    const events = isRow(row) ? await logOf(db, id, row) : [];
    const derived = isRow(row) ? derive(id, events) : null;
    if (!derived) {
      skipped.push(id);
      if (isRow(row)) await sink.add([(a) => a.set(entry.key, withRecord(row, null))]);
      else await sink.add([(a) => a.delete(entry.key)]);
      continue;
    }
    const { record, lease } = derived;
    const unique = record.options.unique?.key;
    if (unique !== undefined) {
      const held = holders.get(unique);
      if (!held || !createdLater(held, record)) {
        holders.set(unique, { createdAt: record.createdAt, id: record.id });
      }
    }
    const writes: Array<(a: Deno.AtomicOperation) => void> = [];
    const rebuilt = withRecord(row as Row, record);
    writes.push((a) => a.set(entry.key, rebuilt));
    const effects = effectsOf(null, { id, expect: 0, events, record });
    count(sums, key, kept(effects, Date.now()));
    const stored = lease ? leases.get(id) : undefined;
    const held = stored?.serverId === lease?.serverId ? stored : lease;
    writes.push((a) => moveIndexes(a, key, effects, held ?? null));
    await sink.add(writes, 2 * JSON.stringify(rebuilt).length);
    jobs++;
  }
  for (const { key, delta } of sums.values()) {
    await sink.add([(a) => a.set(key, new Deno.KvU64(u64(delta)))]);
  }
  for (const [unique, record] of holders) {
    await sink.add([(a) => a.set(key("unique", unique), record.id)]);
  }
  await sink.flush();
  return { jobs, skipped };
}

/** A job's whole log: the events its row holds, then those in rows of their own. */
export async function logOf(db: KvDb, id: string, row: Row): Promise<JobEvent[]> {
  const events = rowEvents(row);
  if (row[2] === 1) {
    for await (const entry of db.kv.list<JobEvent>({ prefix: db.key("ev", id) })) {
      events.push(entry.value);
    }
  }
  return events;
}

/**
 * Adds the pruned base (the history of removed jobs, `pruned/<counter key>`) to `sums`: removed
 * jobs left no log to count them from. Buckets past their keep are left out.
 */
async function addPrunedBase(db: KvDb, sums: Sums): Promise<void> {
  const { kv, key } = db;
  const base = key("pruned");
  const now = Date.now();
  for await (const entry of kv.list<Deno.KvU64>({ prefix: base })) {
    const parts = entry.key.slice(base.length);
    if ((parts[0] === "bucket" || parts[0] === "stat") && parts[1] !== "total") {
      const resolution = parts[1] as Resolution;
      if ((parts[2] as number) < now - RESOLUTIONS[resolution].keepMs) continue;
    }
    sums.add(key(...parts), Number(entry.value.value));
  }
}

async function deletePrefix(db: KvDb, prefix: Key): Promise<void> {
  const { kv } = db;
  const sink = new BufferedWriter(kv, (a) => db.writer.commitOrThrow(a));
  for await (const entry of kv.list({ prefix })) {
    await sink.add([(a) => a.delete(entry.key)]);
  }
  await sink.flush();
}

/** Drops time buckets (and statistics buckets) older than their retention. */
export async function prune(db: KvDb, now: number): Promise<void> {
  const { kv, key } = db;
  const sink = new BufferedWriter(kv, (a) => db.writer.commitOrThrow(a));
  // The pruned base's buckets (`pruned/bucket/...`) expire with the buckets themselves.
  const kinds: Array<[string, readonly Resolution[]]> = [
    ["bucket", Object.keys(RESOLUTIONS) as Resolution[]],
    ["stat", STAT_RESOLUTIONS],
  ];
  for (const room of [[], ["pruned"]]) {
    for (const [kind, resolutions] of kinds) {
      for (const resolution of resolutions) {
        const entries = kv.list({
          start: key(...room, kind, resolution),
          end: key(...room, kind, resolution, now - RESOLUTIONS[resolution].keepMs),
        });
        for await (const entry of entries) await sink.add([(a) => a.delete(entry.key)]);
      }
    }
  }
  await sink.flush();
}

/** Packs unchecked writes into atomics of a bounded number of mutations (rebuild, pruning). */
class BufferedWriter {
  #ops: Array<(a: Deno.AtomicOperation) => void> = [];
  #bytes = 0;
  constructor(
    private kv: Deno.Kv,
    private commit: (atomic: Deno.AtomicOperation) => Promise<void>,
  ) {}

  /** Adds writes (each at most a few mutations) of about `bytes` in all. */
  async add(ops: Array<(a: Deno.AtomicOperation) => void>, bytes = 100): Promise<void> {
    if (this.#bytes + bytes > MAX_BYTES) await this.flush();
    this.#ops.push(...ops);
    this.#bytes += bytes;
    if (this.#ops.length >= 60) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.#ops.length) return;
    const atomic = this.kv.atomic();
    for (const op of this.#ops) op(atomic);
    this.#ops = [];
    this.#bytes = 0;
    await this.commit(atomic);
  }
}
