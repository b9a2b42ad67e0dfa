import assert from "node:assert/strict";
import { type ChaosReport, runChaos } from "./chaos.ts";
import { deletePrefix, REDIS_URL, whenRedis } from "./redis_helpers.ts";
import { POSTGRES_URL, whenPostgres } from "./postgres_helpers.ts";
import { pg } from "../storage/postgres/db.ts";

function check(report: ChaosReport): void {
  assert.deepEqual(report.problems, [], JSON.stringify(report));
  assert.ok(report.kills >= 2, `only ${report.kills} kills`);
  assert.ok(report.inFlightAtKills > 0, "the kills hit workers in the middle of jobs");
  assert.equal(report.lost, 0);
  assert.equal(report.stuck, 0);
  // Connection cuts (PostgreSQL) may cost live workers their leases: those jobs may run again.
  assert.ok(report.duplicates <= report.inFlightAtKills + report.reapedLive);
  assert.ok(report.consistent);
  // Retention was on: jobs went while the kills went on, and none before it had succeeded.
  assert.ok(report.pruned > 0, "nothing was pruned");
  // Issue 21 point 4: a queue at global concurrency 5 among the kills.
  assert.equal(report.limitedMostAtOnce, 5, "the limit is reached and never passed");
}

// Enough work to outlast the kills (60 slots, 43 ms a job on average: ~1,400 jobs/s at best), so
// that every kill can hit jobs in flight. One worker's clock runs 60 s ahead, one's 60 s behind
// (hosts with broken NTP): neither may reap live jobs, nor leave dead ones stuck. Retention is on
// (Succeeded kept 1 s): pruning among the kills may lose nothing and remove nothing unfinished.
const short = {
  jobs: 8_000,
  workers: 3,
  killForMs: 6_000,
  killEveryMs: 1_500,
  seed: 7,
  skewsMs: [60_000, -60_000],
  keepSucceededMs: 1_000,
  // 20 flows of 13 nodes: no node may start before its children ended, none may be lost.
  flows: 20,
  limits: { concurrency: 5, jobs: 500 },
};

await whenRedis("chaos on Redis", () => {
  Deno.test({
    name:
      "chaos (short): 3 workers on one Redis (2 with skewed clocks), SIGKILLed at random, retention on; nothing lost, stuck or pruned unfinished",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const prefix = `tfchaos-${crypto.randomUUID().slice(0, 8)}`;
      try {
        check(await runChaos({ url: `${REDIS_URL}?prefix=${prefix}`, ...short }));
      } finally {
        await deletePrefix(prefix);
      }
    },
  });
});

Deno.test({
  name:
    "chaos (short): 3 workers on one KV file (2 with skewed clocks), SIGKILLed at random, retention on; nothing lost, stuck or pruned unfinished",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-chaos-test-" });
    try {
      check(await runChaos({ url: `kv:${dir}/chaos.sqlite`, ...short }));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

await whenPostgres("chaos on PostgreSQL", () => {
  Deno.test({
    name:
      "chaos (short): 3 workers on one PostgreSQL database, SIGKILLed at random and every connection cut by pg_terminate_backend after each kill; nothing lost, stuck or pruned unfinished",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      // A database of its own, so that cutting its connections touches no other test's.
      const database = `taskflow_chaos_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`create database ${database}`);
      let cuts = 0;
      try {
        const url = new URL(POSTGRES_URL);
        url.pathname = `/${database}`;
        const report = await runChaos({
          url: url.href,
          ...short,
          disrupt: async () => {
            const { rowCount } = await admin.query(
              "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1",
              [database],
            );
            cuts += rowCount ?? 0;
          },
        });
        check(report);
        assert.ok(cuts >= report.kills, `only ${cuts} connections cut`);
      } finally {
        await admin.query(`drop database if exists ${database} with (force)`);
        await admin.end();
      }
    },
  });
});
