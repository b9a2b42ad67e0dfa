import type { Handlers } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import { STATES } from "../lib/states.ts";
import {
  DURATION_BUCKETS_MS,
  type LimiterUse,
  type PartitionLimits,
  type QueueSettings,
} from "../lib/mod.ts";

const escape = (v: string) =>
  v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");

/** GET /metrics: Prometheus text exposition of counters (from the live hub's snapshot). */
export const handler: Handlers<unknown, DashboardState> = {
  async GET(_req, ctx) {
    const [snapshot, retention, limits] = await Promise.all([
      ctx.state.hub.snapshot(),
      ctx.state.tf.retention(),
      ctx.state.tf.queues.list(),
    ]);
    const { counts, servers } = snapshot;
    const lines: string[] = [
      "# HELP taskflow_jobs Jobs currently in each state, per queue.",
      "# TYPE taskflow_jobs gauge",
    ];
    for (const [queue, states] of Object.entries(counts.queues)) {
      for (const state of STATES) {
        lines.push(`taskflow_jobs{queue="${escape(queue)}",state="${state}"} ${states[state]}`);
      }
    }
    lines.push(
      "# HELP taskflow_jobs_total Jobs created, and entries into Succeeded, Failed and Deleted, all time.",
    );
    lines.push("# TYPE taskflow_jobs_total counter");
    for (const [kind, n] of Object.entries(counts.totals)) {
      // Removal is no event of a job's life: it has its own counter below.
      if (kind !== "pruned") lines.push(`taskflow_jobs_total{event="${kind}"} ${n}`);
    }
    lines.push(
      "# HELP taskflow_jobs_pruned_total Finished jobs removed by the retention policy, all time.",
      "# TYPE taskflow_jobs_pruned_total counter",
      `taskflow_jobs_pruned_total ${counts.totals.pruned ?? 0}`,
    );
    const last = retention?.lastPass;
    if (last) {
      lines.push(
        "# HELP taskflow_prune_last_pass_timestamp_seconds When the last pruning pass ended (any worker or tf.prune()).",
        "# TYPE taskflow_prune_last_pass_timestamp_seconds gauge",
        `taskflow_prune_last_pass_timestamp_seconds ${last.at / 1_000}`,
        "# HELP taskflow_prune_last_pass_removed Jobs the last pruning pass removed, per final state.",
        "# TYPE taskflow_prune_last_pass_removed gauge",
        ...(["succeeded", "failed", "deleted"] as const).map((key) =>
          `taskflow_prune_last_pass_removed{state="${key[0].toUpperCase()}${key.slice(1)}"} ${
            last.removed[key]
          }`
        ),
      );
    }
    lines.push(
      "# HELP taskflow_job_duration_seconds How long attempts ran (finished ones, all time).",
      "# TYPE taskflow_job_duration_seconds histogram",
    );
    let cumulative = 0;
    DURATION_BUCKETS_MS.forEach((le, i) => {
      cumulative += counts.durations.counts[i] ?? 0;
      lines.push(`taskflow_job_duration_seconds_bucket{le="${le / 1_000}"} ${cumulative}`);
    });
    cumulative += counts.durations.counts[DURATION_BUCKETS_MS.length] ?? 0;
    lines.push(`taskflow_job_duration_seconds_bucket{le="+Inf"} ${cumulative}`);
    lines.push(`taskflow_job_duration_seconds_sum ${counts.durations.sumMs / 1_000}`);
    lines.push(`taskflow_job_duration_seconds_count ${cumulative}`);
    lines.push("# HELP taskflow_jobs_retrying Jobs waiting to retry after a failed attempt.");
    lines.push("# TYPE taskflow_jobs_retrying gauge", `taskflow_jobs_retrying ${counts.retrying}`);
    lines.push("# HELP taskflow_servers Live worker servers.", "# TYPE taskflow_servers gauge");
    lines.push(`taskflow_servers ${servers.length}`);
    lines.push(
      "# HELP taskflow_jobs_in_flight Jobs running on live servers.",
      "# TYPE taskflow_jobs_in_flight gauge",
    );
    lines.push(`taskflow_jobs_in_flight ${servers.reduce((n, s) => n + s.inFlight, 0)}`);
    const uses = await Promise.all(limits.map((q) => ctx.state.tf.queues.use(q.name, counts)));
    lines.push(...limitLines(limits, uses));
    return new Response(lines.join("\n") + "\n", {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  },
};

/** The stored queue limits and their current use. */
function limitLines(queues: QueueSettings[], uses: (LimiterUse | null)[]): string[] {
  if (!queues.length) return [];
  const lines = [
    "# HELP taskflow_queue_limit Stored queue limits: concurrency, rate_max starts per " +
    "rate_window_seconds; scope partition applies to each partition key.",
    "# TYPE taskflow_queue_limit gauge",
  ];
  const add = (queue: string, scope: string, limits: PartitionLimits) => {
    const labels = (limit: string) =>
      `{queue="${escape(queue)}",scope="${scope}",limit="${limit}"}`;
    if (limits.concurrency !== undefined) {
      lines.push(`taskflow_queue_limit${labels("concurrency")} ${limits.concurrency}`);
    }
    if (limits.rateLimit) {
      lines.push(`taskflow_queue_limit${labels("rate_max")} ${limits.rateLimit.max}`);
      lines.push(
        `taskflow_queue_limit${labels("rate_window_seconds")} ${limits.rateLimit.perMs / 1_000}`,
      );
    }
  };
  for (const queue of queues) {
    add(queue.name, "queue", queue);
    if (queue.partition) add(queue.name, "partition", queue.partition);
  }
  lines.push(
    "# HELP taskflow_queue_limit_use Current use of queue limits: running jobs, starts in the " +
      "rate window.",
    "# TYPE taskflow_queue_limit_use gauge",
  );
  queues.forEach((queue, i) => {
    const use = uses[i];
    if (!use) return;
    const name = escape(queue.name);
    lines.push(`taskflow_queue_limit_use{queue="${name}",use="running"} ${use.running}`);
    lines.push(
      `taskflow_queue_limit_use{queue="${name}",use="rate_starts"} ${use.startsInWindow}`,
    );
  });
  return lines;
}
