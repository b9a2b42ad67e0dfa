/**
 * @module
 * The KV backend's fleet records: leases, heartbeats, server records, and the small record stores
 * (recurring definitions, batches, flows, settings), each written by compare-and-set.
 */

import type { Lease } from "../../lib/projection.ts";
import { badCursor, encodeCursor, unwrapKvCursor } from "../cursor.ts";
import { StorageUnavailableError } from "../errors.ts";
import { canDelete, canPut } from "../record_store.ts";
import type {
  Heartbeat,
  HeldLease,
  LeasePage,
  RecordStore,
  RecurringRecord,
  ServerInfo,
} from "../storage.ts";
import type { KvDb } from "./maintenance.ts";
import type { Key } from "./projections.ts";
import { rowEntry } from "./rows.ts";
import { getMany, MAX_CHECKS } from "./writer.ts";

/** A Processing job's state entry as listed or read: its value is the job's lease. */
interface HeldEntry {
  id: string;
  stateAt: number;
  value: Lease | null;
}

/**
 * The leases of Processing state entries. An entry holding none (a transition that knew no
 * lease) gets the holder its record names since it entered Processing: reapers look for a
 * lease that stays unchanged, so any stable value serves.
 */
async function leasesOf(db: KvDb, found: readonly HeldEntry[]): Promise<Lease[]> {
  const bare = found.filter((entry) => entry.value === null);
  const fallback = new Map<string, Lease>();
  if (bare.length) {
    const rows = await getMany<unknown>(db.kv, bare.map(({ id }) => db.key("job", id)));
    bare.forEach(({ id, stateAt }, i) => {
      const record = rowEntry(rows[i]).record;
      fallback.set(id, { serverId: record?.serverId ?? "", until: stateAt });
    });
  }
  return found.map(({ id, value }) => value ?? fallback.get(id)!);
}

/** The leases of the Processing jobs listed by `entries` (a KV listing of state entries). */
export async function listedLeases(
  db: KvDb,
  entries: AsyncIterable<Deno.KvEntry<Lease | null>>,
  limit = Infinity,
): Promise<HeldLease[]> {
  const found: HeldEntry[] = [];
  for await (const { key, value } of entries) {
    found.push({ id: key[4] as string, stateAt: key[3] as number, value });
    if (found.length >= limit) break;
  }
  const leases = await leasesOf(db, found);
  return found.map(({ id }, i) => ({ id, ...leases[i] }));
}

/** The lease of job `id` when it is Processing (null otherwise). */
export async function leaseOfJob(db: KvDb, id: string): Promise<Lease | null> {
  const record = rowEntry(await db.kv.get(db.key("job", id))).record;
  if (record?.state !== "Processing") return null;
  const entry = await db.kv.get<Lease | null>(db.key("state", "Processing", record.stateAt, id));
  if (entry.versionstamp === null) return null;
  const [lease] = await leasesOf(db, [{ id, stateAt: record.stateAt, value: entry.value }]);
  return lease;
}

/** A page of the leases held now (in the order jobs entered Processing). */
export async function leasePage(
  db: KvDb,
  query: { cursor?: string; limit?: number },
): Promise<LeasePage> {
  const limit = query.limit ?? 500;
  const cursor = unwrapKvCursor(query.cursor);
  const prefix = db.key("state", "Processing");
  const iterator = db.kv.list<Lease | null>({ prefix }, { limit, cursor });
  let leases: HeldLease[];
  try {
    leases = await listedLeases(db, iterator);
  } catch (error) {
    if (query.cursor === undefined) throw error;
    throw badCursor(query.cursor);
  }
  const page: LeasePage = { leases };
  if (leases.length === limit) page.cursor = encodeCursor([iterator.cursor]);
  return page;
}

/** Writes the server record and extends its leases; answers the leases it no longer holds. */
export async function heartbeat(
  db: KvDb,
  address: string,
  beat: Heartbeat,
): Promise<{ lost: string[] }> {
  const lost: string[] = [];
  // The server record and up to 99 leases go in one atomic write; more leases take more.
  const chunk = MAX_CHECKS - 1;
  for (let i = 0; i === 0 || i < beat.leases.length; i += chunk) {
    lost.push(...await beatChunk(db, address, beat.leases.slice(i, i + chunk), beat, i === 0));
  }
  return { lost };
}

async function beatChunk(
  db: KvDb,
  address: string,
  ids: string[],
  beat: Heartbeat,
  withServer: boolean,
): Promise<string[]> {
  const { lost, held } = await readHeld(db, ids, beat.server.id);
  const atomic = withServer ? withServerRecord(db, db.kv.atomic(), beat) : db.kv.atomic();
  for (const entry of held) atomic.check(entry).set(entry.key, extended(entry, beat));
  if ((await db.writer.commit(atomic)).ok) return lost;
  // A job finished or moved meanwhile. Retrying all together fails again as long as jobs keep
  // finishing (a busy worker's do, many a second): each lease goes on its own instead, first
  // on the entry read, then (if that one changed) read again.
  const kept = await Promise.all(held.map((entry) => beatOne(db, address, entry, beat)));
  if (withServer) await db.writer.commit(withServerRecord(db, db.kv.atomic(), beat));
  return [...lost, ...held.filter((_, i) => !kept[i]).map((entry) => entry.id)];
}

/** `atomic` writing the beating server's record too. */
function withServerRecord(
  db: KvDb,
  atomic: Deno.AtomicOperation,
  beat: Heartbeat,
): Deno.AtomicOperation {
  // KV has no clock to read: the beating process's clock, not the lastSeen it reports.
  const record = { ...beat.server, expiresAt: Date.now() + beat.ttlMs };
  return atomic.set(db.key("server", beat.server.id), record, { expireIn: beat.ttlMs });
}

/** Extends the lease in `entry` alone; false when its job is no longer this server's. */
async function beatOne(
  db: KvDb,
  address: string,
  entry: HeldState | undefined,
  beat: Heartbeat,
): Promise<boolean> {
  for (let attempt = 1; entry && attempt <= 50; attempt++) {
    const atomic = db.kv.atomic().check(entry).set(entry.key, extended(entry, beat));
    if ((await db.writer.commit(atomic)).ok) return true;
    [entry] = (await readHeld(db, [entry.id], beat.server.id)).held;
  }
  if (!entry) return false;
  throw new StorageUnavailableError(
    address,
    `the lease of job ${entry.id} kept changing during a heartbeat`,
  );
}

/** The lease `entry` as `beat` extends it (always changed, so reapers see the holder live). */
function extended(entry: Deno.KvEntry<Lease | null>, beat: Heartbeat): Lease {
  return {
    serverId: beat.server.id,
    until: Math.max(beat.leaseUntil, (entry.value?.until ?? 0) + 1),
  };
}

/** A Processing state entry as a beat read it, with its job's id. */
type HeldState = Deno.KvEntry<Lease | null> & { id: string };

/** The Processing state entries of `ids` still held by `serverId`, and the ids it lost. */
async function readHeld(
  db: KvDb,
  ids: string[],
  serverId: string,
): Promise<{ lost: string[]; held: HeldState[] }> {
  // A lease lives in its job's Processing state entry, whose key holds when the job entered
  // Processing: the rows name it.
  const rows = await getMany<unknown>(db.kv, ids.map((id) => db.key("job", id)));
  const lost: string[] = [];
  const named: { id: string; serverId?: string; key: Key }[] = [];
  rows.forEach((row, i) => {
    const record = rowEntry(row).record;
    if (record?.state !== "Processing") lost.push(ids[i]);
    else {
      const key = db.key("state", "Processing", record.stateAt, ids[i]);
      named.push({ id: ids[i], serverId: record.serverId, key });
    }
  });
  const entries = await getMany<Lease | null>(db.kv, named.map(({ key }) => key));
  const held: HeldState[] = [];
  entries.forEach((entry, i) => {
    // No entry: the job left Processing after its row was read. An entry without a lease
    // (see leasesOf) is held by the server its record names.
    const holder = entry.value?.serverId ?? named[i].serverId;
    if (entry.versionstamp === null || holder !== serverId) lost.push(named[i].id);
    else held.push({ ...entry, id: named[i].id });
  });
  return { lost, held };
}

/** The servers whose record has not expired. */
export async function servers(db: KvDb): Promise<ServerInfo[]> {
  const now = Date.now();
  const found: ServerInfo[] = [];
  type Stored = ServerInfo & { expiresAt: number };
  for await (const entry of db.kv.list<Stored>({ prefix: db.key("server") })) {
    const { expiresAt, ...info } = entry.value;
    if (expiresAt > now) found.push(info);
  }
  return found;
}

/**
 * The record store of `room`; `open` answers the storage's parts and throws once it is closed
 * (asked per call: the stores are built before the storage's constructor body runs).
 */
export function recordStore(room: string, open: () => KvDb): RecordStore {
  return {
    get: async (id) => {
      const { kv, key } = open();
      return (await kv.get<RecurringRecord>(key(room, id))).value;
    },
    list: async () => {
      const { kv, key } = open();
      const all: RecurringRecord[] = [];
      for await (const entry of kv.list<RecurringRecord>({ prefix: key(room) })) {
        all.push(entry.value);
      }
      return all;
    },
    put: async (record, expect) => {
      const { kv, key, writer } = open();
      const entry = await kv.get<RecurringRecord>(key(room, record.id));
      if (!canPut(entry.value, expect)) return false;
      return (await writer.commit(kv.atomic().check(entry).set(entry.key, record))).ok;
    },
    delete: async (id, expect) => {
      const { kv, key, writer } = open();
      const entry = await kv.get<RecurringRecord>(key(room, id));
      if (!canDelete(entry.value, expect)) return false;
      return (await writer.commit(kv.atomic().check(entry).delete(entry.key))).ok;
    },
  };
}
