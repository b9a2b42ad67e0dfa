/**
 * @module
 * What a transition writes to Deno KV besides the record and the log: index entries, leases,
 * names, and counter deltas summed per key (shared by the append path and rebuild).
 */

import type { Lease } from "../../lib/projection.ts";
import type { Effects } from "../effects.ts";

/** A KV key. */
export type Key = Deno.KvKey;
/** Builds a key under the storage's prefix. */
export type KeyOf = (...parts: Deno.KvKeyPart[]) => Key;

const U64 = 1n << 64n;

/**
 * The index entries and name entry a transition moves. A Processing job's state entry holds its
 * lease (`lease`, null when unknown), so taking and dropping a lease writes no key of its own.
 */
export function moveIndexes(
  atomic: Deno.AtomicOperation,
  key: KeyOf,
  effects: Effects,
  lease: Lease | null = null,
): void {
  const { removeState, addState, removeReady, addReady, removeDue, addDue } = effects;
  if (removeState) {
    atomic.delete(key("state", removeState.state, removeState.at, removeState.id));
  }
  if (addState) {
    const value = addState.state === "Processing" ? lease : null;
    atomic.set(key("state", addState.state, addState.at, addState.id), value);
  }
  if (removeReady) {
    atomic.delete(
      key("ready", removeReady.queue, removeReady.rank, removeReady.at, removeReady.id),
    );
  }
  if (addReady) {
    atomic.set(key("ready", addReady.queue, addReady.rank, addReady.at, addReady.id), null);
  }
  if (removeDue) atomic.delete(key("due", removeDue.runAt, removeDue.id));
  if (addDue) atomic.set(key("due", addDue.runAt, addDue.id), null);
  if (effects.addName) {
    const { name, createdAt, id } = effects.addName;
    atomic.set(key("name", name, -createdAt, id), null);
  }
}

/** Adds a transition's counter deltas (gauges, totals, batch counts, buckets, stats, durations). */
export function count(sums: Sums, key: KeyOf, effects: Effects): void {
  for (const { queue, state, delta } of effects.gauges) {
    sums.add(key("gauge", queue, state), delta);
  }
  for (const total of effects.totals) sums.add(key("total", total), 1);
  if (effects.batch) {
    for (const { kind, delta } of effects.batch.deltas) {
      sums.add(key("batchcount", effects.batch.id, kind), delta);
    }
  }
  if (effects.retrying !== 0) sums.add(key("retrying"), effects.retrying);
  for (const hit of effects.buckets) {
    sums.add(key("bucket", hit.resolution, hit.at, hit.kind), 1);
  }
  for (const { resolution, at, field, n } of effects.stats) {
    sums.add(key("stat", resolution, at, field), n);
  }
  for (const { bucket, ms } of effects.durations) {
    sums.add(key("duration", bucket), 1);
    sums.add(key("duration_ms"), Math.max(0, Math.round(ms)));
  }
}

/** Counter deltas added up per key, so that each key is written once. */
export class Sums {
  #deltas = new Map<string, { key: Key; delta: number }>();
  #name: (key: Key) => string;

  /** Sums naming their keys by `name` (JSON unless the caller has the names already). */
  constructor(name: (key: Key) => string = (key) => JSON.stringify(key)) {
    this.#name = name;
  }

  add(key: Key, delta: number): void {
    const name = this.#name(key);
    const entry = this.#deltas.get(name);
    if (entry) entry.delta += delta;
    else this.#deltas.set(name, { key, delta });
  }

  values(): IterableIterator<{ key: Key; delta: number }> {
    return this.#deltas.values();
  }

  /** The deltas with their keys' names (as JSON), for merging elsewhere without naming again. */
  named(): IterableIterator<[string, { key: Key; delta: number }]> {
    return this.#deltas.entries();
  }
}

/** A delta as a KV u64 (sums wrap modulo 2^64, so a negative delta subtracts). */
export function u64(delta: number): bigint {
  return (U64 + BigInt(delta)) % U64;
}
