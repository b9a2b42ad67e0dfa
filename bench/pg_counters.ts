/**
 * @module
 * Do the PostgreSQL counters become a hot row at concurrency 50? 50 concurrent loops each claim
 * one job and complete it (two transactions per job, each moving the same per-state counters:
 * the worst case, no batching), with the counters spread over 16 slots (as shipped) and over one
 * row, interleaved, fresh schema each. `deno run -A bench/pg_counters.ts [rounds] [jobs]`
 */

import { appendCommit } from "../lib/changes.ts";
import { TaskFlow } from "../lib/client.ts";
import { PostgresStorage } from "../storage/postgres/mod.ts";

const URL_ = Deno.env.get("TASKFLOW_PG_URL") ?? "postgres://postgres@127.0.0.1:5432/postgres";
const rounds = Number(Deno.args[0] ?? 3),
  jobs = Number(Deno.args[Deno.args[0] === "--child" ? 2 : 1] ?? 3_000);

/** Jobs/s of `jobs` claimed and completed one per transaction by 50 loops. */
async function run(slots: number): Promise<number> {
  const schema = `bench_counters_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
  const storage = await PostgresStorage.open(`${URL_}?schema=${schema}`, { poolSize: 50 });
  const tf = new TaskFlow(storage);
  try {
    if (slots !== 16) {
      // The same function with every counter in one row per name.
      const { rows } = await storage.query(
        `select pg_get_functiondef('"${schema}".append(jsonb)'::regprocedure) as def`,
      );
      await storage.query(
        rows[0].def.replaceAll("pg_backend_pid() % 16", `pg_backend_pid() % ${slots}`),
      );
    }
    for (let i = 0; i < jobs; i += 1_000) {
      await tf.enqueueMany(Array.from({ length: Math.min(1_000, jobs - i) }, (_, n) => ({
        job: "noop",
        args: { n },
      })));
    }
    let done = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: 50 }, async (_, loop) => {
      while (done < jobs) {
        const { claimed } = await storage.claim(
          { queues: ["default"], limit: 1 },
          (record) =>
            appendCommit(record, [{
              type: "state",
              at: Date.now(),
              state: "Processing",
              data: { serverId: `loop-${loop}`, leaseUntil: Date.now() + 60_000 },
            }], { serverId: `loop-${loop}`, until: Date.now() + 60_000 }),
        );
        if (!claimed.length) {
          if (done >= jobs) break;
          await new Promise((r) => setTimeout(r, 1));
          continue;
        }
        const [claim] = claimed;
        await storage.append([{
          commits: [
            appendCommit(claim.record, [{ type: "state", at: Date.now(), state: "Succeeded" }]),
          ],
        }]);
        done++;
      }
    }));
    return jobs / ((performance.now() - started) / 1000);
  } finally {
    await storage.dropSchema();
    await tf.close();
  }
}

if (Deno.args[0] === "--child") {
  console.log(JSON.stringify(await run(Number(Deno.args[1]))));
} else {
  for (let r = 0; r < rounds; r++) {
    for (const slots of r % 2 ? [1, 16] : [16, 1]) {
      const { stdout } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", import.meta.filename!, "--child", String(slots), String(jobs)],
        stderr: "inherit",
      }).output();
      const value = Math.round(JSON.parse(new TextDecoder().decode(stdout)));
      console.log(`round ${r + 1}: ${String(slots).padStart(2)} slot(s): ${value} jobs/s`);
    }
  }
  console.log(`load average ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
}
