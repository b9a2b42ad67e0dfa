import assert from "node:assert/strict";
import { nextOccurrence } from "../lib/recurring.ts";
import { KvStorage } from "../storage/kv/mod.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import { runRecurringSuite } from "./recurring_suite.ts";
import { openTestRedis, whenRedis } from "./redis_helpers.ts";
import { openTestPostgres, whenPostgres } from "./postgres_helpers.ts";

runRecurringSuite(
  "memory",
  () => Promise.resolve({ storage: new MemoryStorage(), cleanup: () => Promise.resolve() }),
);
runRecurringSuite("kv :memory:", async () => {
  const storage = await KvStorage.open(":memory:", "kv::memory:");
  return { storage, cleanup: () => storage.close() };
});

await whenRedis("redis recurring", () => runRecurringSuite("redis", () => openTestRedis("rec")));
await whenPostgres(
  "postgres recurring",
  () => runRecurringSuite("postgres", () => openTestPostgres("rec")),
);

const iso = (ms: number | undefined) => ms === undefined ? undefined : new Date(ms).toISOString();
const after = (cron: string, tz: string, from: string, n: number) => {
  const out: string[] = [];
  let at = Date.parse(from);
  for (let i = 0; i < n; i++) {
    at = nextOccurrence(cron, tz, at)!;
    out.push(iso(at)!);
  }
  return out;
};

Deno.test("recurring DST: Europe/Berlin spring-forward runs a skipped 02:30 once, at 03:00", () => {
  assert.deepEqual(after("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2), [
    "2026-03-29T01:00:00.000Z", // 03:00 CEST: 02:30 does not exist that night
    "2026-03-30T00:30:00.000Z", // 02:30 CEST
  ]);
});

Deno.test("recurring DST: Europe/Berlin fall-back runs a repeated 02:30 once", () => {
  assert.deepEqual(after("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2), [
    "2026-10-25T00:30:00.000Z", // the first 02:30 (CEST) only
    "2026-10-26T01:30:00.000Z", // 02:30 CET
  ]);
  // An hourly job runs every real hour through the change, none twice, none lost.
  assert.deepEqual(after("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 4), [
    "2026-10-25T00:00:00.000Z",
    "2026-10-25T01:00:00.000Z",
    "2026-10-25T02:00:00.000Z",
    "2026-10-25T03:00:00.000Z",
  ]);
});

Deno.test("recurring DST: America/New_York spring-forward and fall-back", () => {
  assert.deepEqual(after("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2), [
    "2026-03-08T07:00:00.000Z", // 03:00 EDT: 02:30 does not exist
    "2026-03-09T06:30:00.000Z",
  ]);
  assert.deepEqual(after("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2), [
    "2026-11-01T05:30:00.000Z", // the first 01:30 (EDT) only
    "2026-11-02T06:30:00.000Z", // 01:30 EST
  ]);
});
