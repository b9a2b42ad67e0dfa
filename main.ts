/**
 * @module
 * TaskFlow's command line: `deno run -A main.ts <command> [flags]`.
 */

import { parseArgs } from "node:util";
import { TaskFlowError } from "./lib/errors.ts";
import { rebuild } from "./lib/rebuild.ts";
import { openStorage } from "./storage/open.ts";

const USAGE = `usage: deno run -A main.ts <command> [--storage URL]

commands:
  rebuild   recompute every projection from the event logs (stop workers first)

flags:
  --storage URL   memory:, kv:, kv:<path>, kv::memory: (env TASKFLOW_STORAGE;
                  default kv:./data/taskflow.sqlite)
`;

/** Runs the command line `args`; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { storage: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command] = parsed.positionals;
  if (parsed.values.help || !command) {
    console.log(USAGE);
    return command || parsed.values.help ? 0 : 2;
  }
  const url = parsed.values.storage ?? Deno.env.get("TASKFLOW_STORAGE") ?? undefined;
  try {
    switch (command) {
      case "rebuild": {
        const storage = await openStorage(url);
        try {
          const started = performance.now();
          const { jobs } = await rebuild(storage);
          const ms = Math.round(performance.now() - started);
          console.log(`rebuilt the projections of ${jobs} jobs in ${storage.address} (${ms} ms)`);
        } finally {
          await storage.close();
        }
        return 0;
      }
      default:
        console.error(`error: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof TaskFlowError) {
      console.error(`error [${error.code}]: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
