import assert from "node:assert/strict";
import { runChaos } from "./chaos.ts";

Deno.test({
  name: "chaos (short): 3 workers on one KV file, SIGKILLed at random; nothing lost, nothing stuck",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-chaos-test-" });
    try {
      const report = await runChaos({
        url: `kv:${dir}/chaos.sqlite`,
        jobs: 1_200,
        workers: 3,
        killForMs: 6_000,
        killEveryMs: 1_500,
        seed: 7,
      });
      assert.deepEqual(report.problems, [], JSON.stringify(report));
      assert.ok(report.kills >= 2, `only ${report.kills} kills`);
      assert.ok(report.inFlightAtKills > 0, "the kills hit workers in the middle of jobs");
      assert.equal(report.lost, 0);
      assert.equal(report.stuck, 0);
      assert.ok(report.duplicates <= report.inFlightAtKills);
      assert.ok(report.consistent);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
