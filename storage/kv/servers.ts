/**
 * @module
 * The KV backend's fleet records: leases, heartbeats, server records, and the small record stores
 * (recurring definitions, batches, flows, settings), each written by compare-and-set.
 */

import type { Lease } from "../../lib/projection.ts";
import { badCursor, encodeCursor, unwrapKvCursor } from "../cursor.ts";
import { StorageUnavailableError } from "../errors.ts";
import { canDelete, canPut } from "../record_store.ts";
import type { Heartbeat, LeasePage, RecordStore, RecurringRecord, ServerInfo } from "../storage.ts";
import type { KvDb } from "./maintenance.ts";
import { getMany, MAX_CHECKS } from "./writer.ts";

/** A page of the leases held now. */
export async function leasePage(
  db: KvDb,
  query: { cursor?: string; limit?: number },
): Promise<LeasePage> {
  const limit = query.limit ?? 500;
  const cursor = unwrapKvCursor(query.cursor);
  const iterator = db.kv.list<Lease>({ prefix: db.key("lease") }, { limit, cursor });
  const leases: LeasePage["leases"] = [];
  try {
    for await (const entry of iterator) {
      leases.push({ id: entry.key[2] as string, ...entry.value });
    }
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
  for (let attempt = 1;; attempt++) {
    const entries = await getMany<Lease>(db.kv, ids.map((id) => db.key("lease", id)));
    const atomic = db.kv.atomic();
    if (withServer) {
      // KV has no clock to read: the beating process's clock, not the lastSeen it reports.
      const record = { ...beat.server, expiresAt: Date.now() + beat.ttlMs };
      atomic.set(db.key("server", beat.server.id), record, { expireIn: beat.ttlMs });
    }
    const lost: string[] = [];
    for (const entry of entries) {
      if (entry.value?.serverId !== beat.server.id) {
        lost.push(entry.key[2] as string);
        continue;
      }
      const until = Math.max(beat.leaseUntil, entry.value.until + 1);
      atomic.check(entry).set(entry.key, { serverId: beat.server.id, until });
    }
    // A check fails only when a job finished or moved meanwhile: read again and retry.
    if ((await db.writer.commit(atomic)).ok) return lost;
    if (attempt >= 50) {
      throw new StorageUnavailableError(address, "leases kept changing during a heartbeat");
    }
  }
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
