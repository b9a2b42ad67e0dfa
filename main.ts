/**
 * @module
 * TaskFlow's command line entry: `deno run -A main.ts <command> [flags]` (the deno.json tasks
 * call it). The command line itself lives in lib/cli/.
 */

import { drainer, main } from "./lib/cli/mod.ts";
import { onDenoDeploy } from "./storage/open.ts";

/** Deno Deploy mode: forced by --deploy, or detected by DENO_DEPLOYMENT_ID. */
const DEPLOY = Deno.args.includes("--deploy") || onDenoDeploy();

// Deno Deploy reads crons from top-level calls only; without KV queues this is what runs jobs.
if (import.meta.main && DEPLOY && typeof Deno.cron === "function") {
  Deno.cron("taskflow drain", "* * * * *", async () => {
    await drainer.run?.();
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args, { deploy: DEPLOY }));
