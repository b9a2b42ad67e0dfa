/**
 * @module
 * `watch [--queue q] [--name n] [--since cursor]` prints every job's events live through
 * `tf.watch`; `explain <id>` prints `tf.explain`. The same calls a program makes.
 */

import { TaskFlow } from "../client.ts";
import type { JobEvent } from "../events.ts";
import { type Parsed, type Settings, UsageError } from "./flags.ts";

/** One event as a line: what happened, in a few words. */
export function eventText(event: JobEvent): string {
  switch (event.type) {
    case "state":
      return `${event.state}${event.reason ? ` (${event.reason})` : ""}`;
    case "created":
      return `created ${event.name} in queue ${event.queue}`;
    case "progress":
      return `progress ${event.value}`;
    case "log":
      return `log: ${event.message}`;
    default:
      return event.type;
  }
}

/** Prints events until Ctrl-C (or SIGTERM); each line starts with the cursor to resume after. */
export async function watchCommand(parsed: Parsed, settings: Settings): Promise<number> {
  const text = (value: string | true | undefined) => typeof value === "string" ? value : undefined;
  const tf = await TaskFlow.open(settings("storage"));
  const controller = new AbortController();
  const stop = () => controller.abort();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  try {
    const events = tf.watch({
      queue: text(parsed.values.queue),
      name: text(parsed.values.name),
      since: text(parsed.values.since),
      signal: controller.signal,
    });
    for await (const { cursor, jobId, event } of events) {
      const at = new Date(event.at).toISOString();
      console.log(`${cursor}\t${at}\t${jobId}\t#${event.seq} ${eventText(event)}`);
    }
    return 0;
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
    await tf.close();
  }
}

/** Prints why job `<id>` is where it is: the summary's reasons, one per line. */
export async function explainCommand(parsed: Parsed, settings: Settings): Promise<number> {
  const [id] = parsed.positionals;
  if (id === undefined) throw new UsageError("explain needs a job id (usage: explain <id>)");
  const tf = await TaskFlow.open(settings("storage"));
  try {
    const { state, reasons } = await tf.explain(id);
    console.log(`${id}: ${state}`);
    for (const reason of reasons) console.log(`  ${reason.kind}: ${reason.text}`);
    return 0;
  } finally {
    await tf.close();
  }
}
