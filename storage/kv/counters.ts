/**
 * @module
 * Reads of the KV counters: state gauges per queue, all-time totals, durations and time buckets
 * (u64 sums; gauges and the retrying count are read as signed, since they also go down).
 */

import type { State } from "../../lib/states.ts";
import { bucketStart, zeroDurations, zeroStates, zeroTotals } from "../effects.ts";
import { type Counts, type Resolution, RESOLUTIONS, type TimelinePoint } from "../storage.ts";
import type { KeyOf } from "./projections.ts";
import { type StatPoint, statPoints, type StatQuery } from "../stats.ts";

/** The gauges, totals and durations (`counts()` of the storage contract). */
export async function counts(kv: Deno.Kv, key: KeyOf): Promise<Counts> {
  // Independent reads, sent together (the live dashboard asks every second).
  const list = (part: string) => Array.fromAsync(kv.list<Deno.KvU64>({ prefix: key(part) }));
  const [gauges, totalEntries, durationEntries, [sumMs, retryingSum]] = await Promise.all([
    list("gauge"),
    list("total"),
    list("duration"),
    kv.getMany<Deno.KvU64[]>([key("duration_ms"), key("retrying")]),
  ]);
  const states = zeroStates();
  const queues: Counts["queues"] = {};
  for (const entry of gauges) {
    const [, , queue, state] = entry.key as [string, string, string, State];
    const n = Number(BigInt.asIntN(64, entry.value.value));
    (queues[queue] ??= zeroStates())[state] = n;
    states[state] += n;
  }
  const totals = zeroTotals();
  for (const entry of totalEntries) {
    totals[entry.key[2] as keyof Counts["totals"]] = Number(entry.value.value);
  }
  const durations = zeroDurations();
  for (const entry of durationEntries) {
    durations.counts[entry.key[2] as number] = Number(entry.value.value);
  }
  durations.sumMs = Number(sumMs.value?.value ?? 0n);
  const retrying = Number(BigInt.asIntN(64, retryingSum.value?.value ?? 0n));
  return { states, queues, totals, durations, retrying };
}

/** The time buckets of `range` (`timeline()` of the storage contract). */
export async function timeline(
  kv: Deno.Kv,
  key: KeyOf,
  { resolution, from, to }: { resolution: Resolution; from: number; to: number },
): Promise<TimelinePoint[]> {
  const start = bucketStart(resolution, from);
  const byAt = new Map<number, TimelinePoint>();
  for (let at = start; at <= to; at += RESOLUTIONS[resolution].ms) {
    byAt.set(at, { at, succeeded: 0, failed: 0 });
  }
  const entries = kv.list<Deno.KvU64>({
    start: key("bucket", resolution, start),
    end: key("bucket", resolution, to + 1),
  });
  for await (const entry of entries) {
    const point = byAt.get(entry.key[3] as number);
    if (point) point[entry.key[4] as "succeeded" | "failed"] = Number(entry.value.value);
  }
  return [...byAt.values()];
}

/** The statistics counters of `query` (`stats()` of the storage contract). */
export async function stats(kv: Deno.Kv, key: KeyOf, query: StatQuery): Promise<StatPoint[]> {
  const { resolution } = query;
  const total = resolution === "total";
  const entries = kv.list<Deno.KvU64>({
    start: key("stat", resolution, total ? 0 : query.from ?? 0),
    end: key("stat", resolution, total ? 1 : (query.to ?? Number.MAX_SAFE_INTEGER - 1) + 1),
  });
  const byAt = new Map<number, Array<[string, number]>>();
  for await (const entry of entries) {
    const at = entry.key[entry.key.length - 2] as number;
    let fields = byAt.get(at);
    if (!fields) byAt.set(at, fields = []);
    fields.push([entry.key[entry.key.length - 1] as string, Number(entry.value.value)]);
  }
  return statPoints(byAt, query);
}
