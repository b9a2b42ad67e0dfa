/**
 * @module
 * The maintenance commands: `rebuild`, `doctor` and `build`.
 */

import { TaskFlow } from "../client.ts";
import { rebuild as rebuildProjections } from "../rebuild.ts";
import { redact } from "../../storage/redact.ts";
import type { Settings } from "./flags.ts";

/** Recomputes every projection from the event logs. */
export async function rebuild(settings: Settings): Promise<number> {
  const tf = await TaskFlow.open(settings("storage"));
  try {
    const started = performance.now();
    const { jobs, skipped } = await rebuildProjections(tf.storage);
    const ms = Math.round(performance.now() - started);
    console.log(`rebuilt the projections of ${jobs} jobs in ${redact(tf.address)} (${ms} ms)`);
    for (const id of skipped) console.log(`left out ${id}: its event log is broken`);
  } finally {
    await tf.close();
  }
  return 0;
}

/** Checks records against their events; exit code 1 when problems are found. */
export async function doctor(settings: Settings): Promise<number> {
  const { doctor } = await import("../doctor.ts");
  const tf = await TaskFlow.open(settings("storage"));
  try {
    const report = await doctor(tf.storage);
    for (const { id, problem } of report.findings) console.log(`${id}: ${problem}`);
    console.log(
      `${report.jobs} jobs examined in ${redact(tf.address)}: ` +
        (report.findings.length
          ? `${report.findings.length} problems (deno task rebuild repairs what the event logs can)`
          : "no problems"),
    );
    return report.findings.length ? 1 : 0;
  } finally {
    await tf.close();
  }
}

/** Bundles the dashboard's islands for hosts without `Deno.bundle`. */
export async function build(): Promise<number> {
  const { buildIslands } = await import("../fresh/islands.ts");
  const { PREBUILT_ISLANDS } = await import("../dashboard/app.ts");
  const manifest = (await import("../../fresh.gen.ts")).default;
  const js = await buildIslands(manifest);
  await Deno.mkdir(new URL(".", PREBUILT_ISLANDS), { recursive: true });
  await Deno.writeTextFile(PREBUILT_ISLANDS, js);
  console.log(`wrote ${PREBUILT_ISLANDS.pathname} (${js.length} bytes)`);
  return 0;
}
