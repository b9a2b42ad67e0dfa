/**
 * @module
 * Redis maintenance: rebuild (every projection recomputed from the per-job logs, written
 * through the append script in replay mode), pruning of old time buckets, and key scans.
 */

import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import type { Lease } from "../../lib/projection.ts";
import { replayChange } from "../replay.ts";
import {
  type Change,
  type Derive,
  type RebuildResult,
  type Resolution,
  RESOLUTIONS,
} from "../storage.ts";
import { append } from "./append.ts";
import { command, fields, type RedisDb } from "./context.ts";
import { globEscape } from "./keys.ts";
import { decodeEvent, encodeEvent } from "../log_codec.ts";
import { collapsed } from "./reads.ts";

/** Jobs replayed per call by rebuild. */
const REBUILD_BATCH = 200;
/** Keys per DEL or UNLINK. */
const DELETE_KEYS = 1_000;

/** Every key matching `pattern` (SCAN may repeat keys; they are deduplicated). */
export async function scan(db: RedisDb, pattern: string): Promise<string[]> {
  const keys = new Set<string>();
  let cursor = "0";
  do {
    const reply = await command(db, "SCAN", cursor, "MATCH", pattern, "COUNT", 1_000);
    const [next, found] = reply as [string, string[]];
    for (const key of found) keys.add(key);
    cursor = next;
  } while (cursor !== "0");
  return [...keys];
}

/** Deletes `keys` (UNLINK: freed in the background), in bounded commands; returns how many. */
export async function unlink(db: RedisDb, keys: readonly string[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < keys.length; i += DELETE_KEYS) {
    deleted += await command(db, "UNLINK", ...keys.slice(i, i + DELETE_KEYS)) as number;
  }
  return deleted;
}

/** Recomputes every projection from the logs (the storage contract's `rebuild`). */
export async function rebuild(db: RedisDb, derive: Derive): Promise<RebuildResult> {
  const k = db.keys;
  const kept = await heldLeases(db);
  // Removed jobs left no log to count them from: their count is kept as it was.
  const pruned = Number(await command(db, "HGET", k.totals, "pruned") ?? 0);
  const stale = [k.jobs, k.pos, k.due, k.lease, k.leases, k.gauges, k.totals, k.names, k.unique];
  for (const room of ["state", "ready", "bucket", "stat", "batchcount"]) {
    stale.push(...await scan(db, `${globEscape(k.prefix)}${room}:*`));
  }
  for (let i = 0; i < stale.length; i += DELETE_KEYS) {
    await command(db, "DEL", ...stale.slice(i, i + DELETE_KEYS));
  }
  const skipped = await expandDone(db);
  const logs = await scan(db, `${globEscape(k.prefix)}log:*`);
  const ids = [...new Set(logs.map((key) => key.slice(k.prefix.length + 4)))];
  // Each unique key goes to the job with it created last (see the storage contract).
  const holders = new Map<string, Pick<JobRecord, "createdAt" | "id">>();
  for (let i = 0; i < ids.length; i += REBUILD_BATCH) {
    const batch = ids.slice(i, i + REBUILD_BATCH);
    const logsOfBatch = await Promise.all(
      batch.map((id) => command(db, "LRANGE", k.log(id), 0, -1) as Promise<string[]>),
    );
    const changes = batch.flatMap((id, j): Change[] => {
      let events: JobEvent[];
      try {
        events = logsOfBatch[j].map((line, n) => decodeEvent(id, line, n));
      } catch {
        skipped.push(id);
        return [];
      }
      const change = replayChange(id, events, { derive, holders, kept });
      if (!change.length) skipped.push(id);
      return change;
    });
    await append(db, changes, { replay: true });
  }
  const pairs = [...holders].flatMap(([unique, { id }]) => [unique, id]);
  for (let i = 0; i < pairs.length; i += DELETE_KEYS) {
    await command(db, "HSET", k.unique, ...pairs.slice(i, i + DELETE_KEYS));
  }
  if (pruned > 0) await command(db, "HINCRBY", k.totals, "pruned", pruned);
  await addPrunedBase(db);
  return { jobs: ids.length - skipped.length, skipped };
}

/**
 * Turns every finished job's done field back into a log list, so that rebuild replays it like
 * any other (the append script collapses it again); returns the ids of fields that do not
 * decode (left in place: nothing to rebuild from).
 */
async function expandDone(db: RedisDb): Promise<string[]> {
  const k = db.keys;
  const broken: string[] = [];
  let cursor = "0";
  do {
    const [next, flat] = await command(db, "HSCAN", k.done, cursor, "COUNT", REBUILD_BATCH) as [
      string,
      string[],
    ];
    cursor = next;
    const writes: string[][] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const id = flat[i];
      let events: JobEvent[];
      try {
        events = collapsed(id, flat[i + 1]).events;
      } catch {
        broken.push(id);
        continue;
      }
      writes.push(
        ["MULTI"],
        ["DEL", k.log(id)],
        ["RPUSH", k.log(id), ...events.map(encodeEvent)],
        ["HDEL", k.done, id],
        ["EXEC"],
      );
    }
    if (writes.length) await db.conn.callMany(writes);
  } while (cursor !== "0");
  return [...new Set(broken)];
}

/**
 * Adds the pruned base (what removed jobs' logs added; see `keys.ts`) to the rebuilt totals,
 * buckets and batch counts: removed jobs left no log to count them from. A base bucket past
 * its keep has expired with the buckets.
 */
async function addPrunedBase(db: RedisDb): Promise<void> {
  const k = db.keys;
  const base = `${k.prefix}pruned:`;
  const add = async (from: string, to: string, expiry?: number) => {
    const found = fields(await command(db, "HGETALL", from));
    for (const [field, n] of Object.entries(found)) {
      await command(db, "HINCRBY", to, field, n);
    }
    if (expiry !== undefined && Object.keys(found).length) {
      await command(db, "PEXPIREAT", to, expiry);
    }
  };
  await add(k.prunedTotals, k.totals);
  for (const key of await scan(db, `${globEscape(base)}bucket:*`)) {
    const [resolution, at] = key.slice(base.length + 7).split(":");
    const keep = RESOLUTIONS[resolution as Resolution]?.keepMs;
    if (keep !== undefined) await add(key, k.bucket(resolution, Number(at)), Number(at) + keep);
  }
  for (const key of await scan(db, `${globEscape(base)}stat:*`)) {
    const [resolution, at] = key.slice(base.length + 5).split(":");
    if (resolution === "total") await add(key, k.stat("total", 0));
    const keep = RESOLUTIONS[resolution as Resolution]?.keepMs;
    if (keep !== undefined) await add(key, k.stat(resolution, Number(at)), Number(at) + keep);
  }
  for (const key of await scan(db, `${globEscape(base)}batchcount:*`)) {
    await add(key, k.batchCount(key.slice(base.length + 11)));
  }
}

/** The leases held now, by job id. */
async function heldLeases(db: RedisDb): Promise<Map<string, Lease>> {
  const [holdersReply, expiries] = await Promise.all([
    command(db, "HGETALL", db.keys.lease),
    command(db, "ZRANGE", db.keys.leases, 0, -1, "WITHSCORES") as Promise<string[]>,
  ]);
  const holders = fields(holdersReply);
  const kept = new Map<string, Lease>();
  for (let i = 0; i < expiries.length; i += 2) {
    const serverId = holders[expiries[i]];
    if (serverId) kept.set(expiries[i], { serverId, until: Number(expiries[i + 1]) });
  }
  return kept;
}

/** Drops time buckets (and statistics buckets) older than their retention. */
export async function prune(db: RedisDb, now: number): Promise<void> {
  const k = db.keys;
  const old: string[] = [];
  for (const room of ["bucket", "stat"]) {
    for (const key of await scan(db, `${globEscape(k.prefix)}${room}:*`)) {
      const [resolution, at] = key.slice(k.prefix.length + room.length + 1).split(":");
      const keep = RESOLUTIONS[resolution as Resolution]?.keepMs;
      if (keep !== undefined && Number(at) < now - keep) old.push(key);
    }
  }
  for (let i = 0; i < old.length; i += DELETE_KEYS) {
    await command(db, "DEL", ...old.slice(i, i + DELETE_KEYS));
  }
}
