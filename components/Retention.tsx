/**
 * @module
 * The retention policy in force and the pruner's last and next pass, as the overview and the
 * pages of finished jobs show them (issue 19, point 7).
 */

import { DEFAULT_RETENTION, type Keep, type ServerInfo, type StoredRetention } from "../lib/mod.ts";
import { durationText, FINAL_KEYS, keepText } from "../lib/retention/policy.ts";
import { policyText } from "../lib/retention/store.ts";
import { finalKey } from "../lib/retention/keep.ts";
import { duration, plural, relative } from "./format.ts";

/** A pass as recorded (`StoredRetention.lastPass`). */
type Pass = NonNullable<StoredRetention["lastPass"]>;

const DEFAULTS = policyText(DEFAULT_RETENTION);

/** "succeeded 24h, failed 30d, deleted kept forever; archived before removal; stored by w1 3 min ago". */
export function policyLine(stored: StoredRetention | null, now: number): string {
  if (!stored) {
    return "no retention policy stored yet: once a worker starts it stores its own, by default " +
      `${DEFAULTS}`;
  }
  const rules = FINAL_KEYS.map((key) =>
    `${key} ${stored[key] === false ? "kept forever" : keepText(stored[key])}`
  ).join(", ");
  const archive = stored.archive ? "archived before removal" : "no archive";
  return `${rules}; ${archive}; stored by ${stored.by} ${relative(stored.updatedAt, now)}`;
}

/** "120 succeeded, 3 failed" or "nothing". */
function removedText(pass: Pass): string {
  const parts = FINAL_KEYS.filter((key) => pass.removed[key] > 0).map((key) =>
    `${pass.removed[key]} ${key}`
  );
  return parts.length ? parts.join(", ") : "nothing";
}

/**
 * "last prune 4 s ago by w1: removed 120 succeeded; next within 6 s", with the last removal when
 * it was an earlier pass, or what keeps pruning from happening.
 */
export function pruneLine(
  stored: StoredRetention | null,
  servers: ServerInfo[],
  now: number,
): string {
  const { lastPass: last, lastRemoval } = stored ?? {};
  const parts: string[] = [];
  if (!last) parts.push("no prune recorded yet");
  else {
    parts.push(
      `last prune ${relative(last.at, now)} by ${last.by}: ` +
        (last.problem ?? `removed ${removedText(last)}`) +
        (last.kept
          ? ` (${plural(last.kept, "expired job")} kept while others depend on ${
            last.kept === 1 ? "it" : "them"
          })`
          : ""),
    );
    if (lastRemoval && lastRemoval.at !== last.at) {
      parts.push(
        `last removal ${relative(lastRemoval.at, now)} by ${lastRemoval.by}: ${
          removedText(lastRemoval)
        }`,
      );
    }
  }
  if (!servers.length) parts.push("no worker is running, so nothing is pruned until one starts");
  else if (last?.everyMs !== undefined) {
    const due = last.at + last.everyMs - now;
    parts.push(due > 0 ? `next within ${duration(due)}` : "next due now");
  } else parts.push("each running worker prunes every 10 s unless told otherwise");
  return parts.join("; ");
}

/** The overview's lines about retention, near the counters. */
export function RetentionSummary(
  { retention, servers, now }: {
    retention: StoredRetention | null;
    servers: ServerInfo[];
    now: number;
  },
) {
  return (
    <section class="retention" data-retention>
      <p>
        <strong>Retention</strong> {policyLine(retention, now)}
      </p>
      <p data-prune>
        <strong>Pruning</strong> {pruneLine(retention, servers, now)}
      </p>
    </section>
  );
}

/** What a state's rule means for its list: "Jobs here are pruned 24h after they finish". */
export function stateRuleText(keep: Keep, stored: boolean): string {
  const whose = stored
    ? "the retention policy"
    : "the default retention policy, once a worker runs";
  if (keep === false) return `Jobs here are kept forever by ${whose}.`;
  const rules: string[] = [];
  if (keep.maxAgeMs !== undefined) {
    rules.push(`jobs older than ${durationText(keep.maxAgeMs)} here are pruned`);
  }
  if (keep.maxCount !== undefined) rules.push(`only the newest ${keep.maxCount} are kept`);
  const text = rules.join(" and ");
  return `${text[0].toUpperCase()}${
    text.slice(1)
  } by ${whose} (jobs with their own keep follow it).`;
}

/** The line above a list of Succeeded, Failed or Deleted jobs; nothing for other states. */
export function StateRetention(
  { state, retention }: { state: string; retention: StoredRetention | null },
) {
  const key = finalKey(state);
  if (!key) return null;
  const keep = (retention ?? DEFAULT_RETENTION)[key];
  return <p class="meta" data-state-retention>{stateRuleText(keep, retention !== null)}</p>;
}
