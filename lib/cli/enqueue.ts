/**
 * @module
 * `enqueue <name> [json-args] [--queue q] [--delay 10s]`: a first job from the shell, through
 * the same client call a program makes; prints the job's id and its dashboard link.
 */

import { TaskFlow } from "../client.ts";
import type { JobDefinition } from "../job.ts";
import { InvalidOptionError } from "../../storage/errors.ts";
import { redact } from "../../storage/redact.ts";
import { loadJobs } from "../worker/load.ts";
import { type Parsed, type Settings, UsageError } from "./flags.ts";
import { duration } from "./values.ts";
import { firstLine } from "./report.ts";
import { dashboardAddress } from "./serve.ts";

/** Enqueues (or schedules) one job; returns the exit code. */
export async function enqueue(parsed: Parsed, settings: Settings): Promise<number> {
  const [name, argsText] = parsed.positionals;
  if (name === undefined) {
    throw new UsageError(
      "enqueue needs a job name (usage: deno task enqueue <name> [json-args] [flags])",
    );
  }
  let args: unknown = null;
  if (argsText !== undefined) {
    try {
      args = JSON.parse(argsText);
    } catch (error) {
      throw new InvalidOptionError("json-args", argsText, `is not JSON (${firstLine(error)})`);
    }
  }
  if (settings("storage")?.trim() === "memory:") {
    // The job would vanish with this process, before any worker could see it.
    throw new UsageError(
      "enqueue cannot use memory: (it lives inside one process); give a shared storage " +
        "such as kv:<path> or redis://host",
    );
  }
  const delayText = settings("delay");
  const delayMs = delayText === undefined ? 0 : duration("delay", delayText);
  const queue = settings("queue");
  const link = jobLink(dashboardAddress(settings));
  // The job's own defaults (queue, attempts, ...) when the jobs module defines it.
  const jobsModule = settings("jobs") ?? "./examples/jobs.ts";
  let definition: JobDefinition | undefined;
  let unread = "";
  try {
    definition = (await loadJobs(jobsModule)).find((job) => job.name === name);
  } catch (error) {
    // Enqueueing by name needs no module; say why the job's defaults were not applied.
    unread = ` (it could not be loaded: ${firstLine(error)})`;
  }
  const tf = await TaskFlow.open(settings("storage"));
  try {
    const options = queue === undefined ? {} : { queue };
    const job = definition ?? name;
    const id = delayMs > 0
      ? await tf.schedule(job, args, { ...options, delayMs })
      : await tf.enqueue(job, args, options);
    const record = await tf.get(id);
    const where = `${name} on queue ${record?.queue ?? queue ?? "default"}`;
    console.log(
      delayMs > 0
        ? `scheduled job ${id} (${where}) to run at ${
          new Date(record?.runAt ?? Date.now() + delayMs).toISOString()
        } in ${redact(tf.address)}`
        : `enqueued job ${id} (${where}) in ${redact(tf.address)}`,
    );
    console.log(link(id));
    if (!definition) {
      console.log(
        `note: ${jobsModule} defines no job ${JSON.stringify(name)}${unread}; it was enqueued ` +
          "by name, and a worker needs a handler of that name to run it",
      );
    }
  } finally {
    await tf.close();
  }
  return 0;
}

/** The dashboard page of a job, at the address the dashboard would be served on. */
function jobLink({ hostname, port }: { hostname: string; port: number }): (id: string) => string {
  // A wildcard bind is reached through any local name; the browser needs one.
  const host = hostname === "0.0.0.0" || hostname === "::"
    ? "localhost"
    : hostname.includes(":")
    ? `[${hostname}]`
    : hostname;
  return (id) => `http://${host}:${port}/job/${encodeURIComponent(id)}`;
}
