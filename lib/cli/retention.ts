/**
 * @module
 * Retention on the command line: the `--retention` syntax, the `--archive <dir>` NDJSON sink,
 * and the `prune` command.
 */

import { InvalidOptionError } from "../../storage/errors.ts";
import { redact } from "../../storage/redact.ts";
import { TaskFlow } from "../client.ts";
import {
  type ArchivedJob,
  checkKeep,
  DEFAULT_RETENTION,
  FINAL_KEYS,
  type FinalKey,
  type Keep,
  type RetentionPolicy,
} from "../retention/policy.ts";
import { policyText, readStoredRetention } from "../retention/store.ts";
import { flagName, type Settings } from "./flags.ts";
import { duration } from "./values.ts";

const RULE = "give state=rule pairs separated by commas, states succeeded, failed, deleted; " +
  "a rule is a duration (1h, 30d), count:N (keep the newest N), both joined by + " +
  "(7d+count:1000), or forever";

/**
 * Reads `--retention` (TASKFLOW_RETENTION): `succeeded=1h,failed=count:10000,deleted=forever`;
 * states left out keep their defaults. Undefined when the setting is absent.
 */
export function readRetentionFlag(settings: Settings): RetentionPolicy | undefined {
  const text = settings("retention");
  if (text === undefined) return undefined;
  const name = flagName("retention");
  const policy: Partial<Record<FinalKey, Keep>> = {};
  for (const pair of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [state, value, extra] = pair.split("=").map((p) => p.trim());
    if (!FINAL_KEYS.includes(state as FinalKey) || !value || extra !== undefined) {
      throw new InvalidOptionError(name, text, `${JSON.stringify(pair)}: ${RULE}`);
    }
    if (state in policy) {
      throw new InvalidOptionError(name, text, `${state} is given twice`);
    }
    policy[state as FinalKey] = keepOf(value, name, text);
  }
  if (!Object.keys(policy).length) throw new InvalidOptionError(name, text, RULE);
  return policy;
}

function keepOf(value: string, name: string, text: string): Keep {
  if (value === "forever" || value === "false") return false;
  const keep: { maxAgeMs?: number; maxCount?: number } = {};
  for (const part of value.split("+")) {
    const count = /^count:(\d+)$/.exec(part);
    if (count && keep.maxCount === undefined) keep.maxCount = Number(count[1]);
    else if (!count && keep.maxAgeMs === undefined && /^\d/.test(part)) {
      keep.maxAgeMs = duration("retention", part);
    } else throw new InvalidOptionError(name, text, `${JSON.stringify(value)}: ${RULE}`);
  }
  return checkKeep(keep, name);
}

/** `YYYY-MM-DD` of `at`, in UTC. */
function day(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

/**
 * An archive writing each slice to `<dir>/<YYYY-MM-DD>.ndjson` (the UTC day of archiving, so a
 * past day's file is complete and can be shipped), one `{ record, events }` line per job,
 * appended and fsync'd before the pruner may remove the jobs.
 */
export function ndjsonArchive(
  dir: string,
  now: () => number = Date.now,
): (jobs: ArchivedJob[]) => Promise<void> {
  return async (jobs) => {
    if (!jobs.length) return;
    await Deno.mkdir(dir, { recursive: true });
    const path = `${dir.replace(/\/+$/, "")}/${day(now())}.ndjson`;
    const text = jobs.map((job) => JSON.stringify(job)).join("\n") + "\n";
    const file = await Deno.open(path, { append: true, create: true });
    try {
      const bytes = new TextEncoder().encode(text);
      for (let written = 0; written < bytes.length;) {
        written += await file.write(bytes.subarray(written));
      }
      await file.sync();
    } finally {
      file.close();
    }
  };
}

/** Ids printed by `prune --dry-run` before "... and N more". */
const SHOWN_IDS = 50;

/** `prune [--dry-run] [--archive DIR]`: one full pass now; prints what went per state. */
export async function prune(settings: Settings, dryRun: boolean): Promise<number> {
  const dir = settings("archive");
  const tf = await TaskFlow.open(settings("storage"));
  try {
    const stored = await readStoredRetention(tf.storage);
    const report = await tf.prune({ dryRun, archive: dir ? ndjsonArchive(dir) : undefined });
    const { succeeded, failed, deleted } = report.removed;
    const total = succeeded + failed + deleted;
    console.log(
      `${dryRun ? "would remove" : "removed"} ${total} ${total === 1 ? "job" : "jobs"} from ` +
        `${redact(tf.address)}: ` +
        `${succeeded} succeeded, ${failed} failed, ${deleted} deleted` +
        (report.kept ? `; kept ${report.kept} expired ones something still depends on` : ""),
    );
    console.log(
      `policy: ${
        stored
          ? `${policyText(stored)} (stored by ${stored.by})`
          : `none stored yet: the default (${policyText(DEFAULT_RETENTION)})`
      }`,
    );
    if (dryRun) {
      for (const id of report.ids.slice(0, SHOWN_IDS)) console.log(`  ${id}`);
      if (report.ids.length > SHOWN_IDS) {
        console.log(`  ... and ${report.ids.length - SHOWN_IDS} more`);
      }
    } else if (dir && total) console.log(`archived to ${dir}`);
    return 0;
  } finally {
    await tf.close();
  }
}
