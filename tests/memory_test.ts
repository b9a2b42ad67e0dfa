import { MemoryStorage } from "../storage/memory/mod.ts";
import type { SortedSet } from "../storage/memory/sorted.ts";
import { runStorageContract } from "./storage_contract.ts";

/** Every entry the memory backend holds, as text (counter values left out). */
function footprint(storage: MemoryStorage): string[] {
  const { jobs, events, indexes } = storage.internals;
  const sets = (room: string, map: Map<string, SortedSet>) =>
    [...map].flatMap(([name, set]) => set.all().map((key) => `${room}:${name}:${key.join("|")}`));
  return [
    ...[...jobs.keys()].map((id) => `job:${id}`),
    ...[...events.keys()].map((id) => `events:${id}`),
    ...sets("state", indexes.byState),
    ...sets("ready", indexes.ready),
    ...indexes.due.all().map((key) => `due:${key.join("|")}`),
    ...indexes.names.all().map((key) => `name:${key.join("|")}`),
    ...[...indexes.leases.keys()].map((id) => `lease:${id}`),
    ...[...indexes.gauges].flatMap(([queue, gauge]) =>
      Object.keys(gauge).map((state) => `gauge:${queue}|${state}`)
    ),
    ...[...indexes.batchCounts.keys()].map((id) => `batchcount:${id}`),
    ...[...indexes.unique.keys()].map((key) => `unique:${key}`),
  ].sort();
}

runStorageContract("memory", () => {
  const storage = new MemoryStorage();
  return Promise.resolve({
    storage,
    cleanup: () => Promise.resolve(),
    corrupt: (s, ids) => {
      const { jobs, totals, byState } = (s as MemoryStorage).internals;
      jobs.delete(ids[0]);
      totals.succeeded += 5;
      byState.get("Enqueued")?.clear();
      return Promise.resolve();
    },
    footprint: () => Promise.resolve(footprint(storage)),
  });
});
