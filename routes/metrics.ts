import type { Handlers } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import { STATES } from "../lib/states.ts";
import { escapeLabel as escape, histogramLines, labels } from "../lib/dashboard/prometheus.ts";
import {
  DURATION_BUCKETS_MS,
  type LimiterUse,
  type PartitionLimits,
  type QueueSettings,
} from "../lib/mod.ts";

/** GET /metrics: Prometheus text exposition of counters (from the live hub's snapshot). */
export const handler: Handlers<unknown, DashboardState> = {
  async GET(_req, ctx) {
    const [snapshot, retention, limits, stats] = await Promise.all([
      ctx.state.hub.snapshot(),
      ctx.state.tf.retention(),
      ctx.state.tf.queues.list(),
      ctx.state.tf.statTotals(),
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
    lines.push(...histogramLines(
      "taskflow_job_duration_seconds",
      "How long attempts ran (finished ones, all time).",
      [[{}, { bounds: DURATION_BUCKETS_MS, ...counts.durations }]],
    ));
    lines.push(...histogramLines(
      "taskflow_job_attempt_duration_seconds",
      "How long attempts ran, per job name (attempts whose duration is known, all time).",
      Object.entries(stats.jobs).map(([name, job]) => [{ name }, job.durations]),
    ));
    lines.push(
      "# HELP taskflow_job_outcomes_total Attempt outcomes per job name, all time: succeeded, " +
        "failed (the job ended Failed), retried, snoozed.",
      "# TYPE taskflow_job_outcomes_total counter",
    );
    for (const [name, job] of Object.entries(stats.jobs)) {
      for (const [outcome, n] of Object.entries(job.outcomes)) {
        lines.push(`taskflow_job_outcomes_total${labels({ name, outcome })} ${n}`);
      }
    }
    lines.push(...histogramLines(
      "taskflow_queue_wait_seconds",
      "How long started jobs waited in their queue, from entering Enqueued to being started.",
      Object.entries(stats.waits).map(([queue, h]) => [{ queue }, h]),
    ));
    lines.push("# HELP taskflow_jobs_retrying Jobs waiting to retry after a failed attempt.");
    lines.push("# TYPE taskflow_jobs_retrying gauge", `taskflow_jobs_retrying ${counts.retrying}`);
    lines.push("# HELP taskflow_servers Live worker servers.", "# TYPE taskflow_servers gauge");
    lines.push(`taskflow_servers ${servers.length}`);
    lines.push(
      "# HELP taskflow_jobs_in_flight Jobs running on live servers.",
      "# TYPE taskflow_jobs_in_flight gauge",
    );
    lines.push(`taskflow_jobs_in_flight ${servers.reduce((n, s) => n + s.inFlight, 0)}`);
    lines.push(
      "# HELP taskflow_server_jobs_in_flight Jobs running on each live server, and its concurrency.",
      "# TYPE taskflow_server_jobs_in_flight gauge",
      ...servers.map((s) =>
        `taskflow_server_jobs_in_flight${
          labels({ server: s.id, hostname: s.hostname })
        } ${s.inFlight}`
      ),
      "# HELP taskflow_server_concurrency Most jobs each live server runs at once.",
      "# TYPE taskflow_server_concurrency gauge",
      ...servers.map((s) =>
        `taskflow_server_concurrency${
          labels({ server: s.id, hostname: s.hostname })
        } ${s.concurrency}`
      ),
    );
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
