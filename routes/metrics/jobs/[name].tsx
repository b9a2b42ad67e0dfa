import type { Handlers, PageProps } from "../../../lib/fresh/types.ts";
import type { DashboardState } from "../../../lib/dashboard/state.ts";
import type { JobStats, StatWindow } from "../../../lib/mod.ts";
import { DurationBars, StatCells, StatHeads } from "../../../components/JobMetrics.tsx";
import { count, duration } from "../../../components/format.ts";

const WINDOWS: Array<[StatWindow, string]> = [
  ["1h", "last hour"],
  ["24h", "last 24 hours"],
  ["7d", "last 7 days"],
  ["all", "all time"],
];

interface Data {
  name: string;
  /** The name's statistics per window (absent: nothing ran in it). */
  windows: Array<{ window: StatWindow; label: string; stats?: JobStats }>;
}

/** GET /metrics/jobs/:name: one job name's attempts, failure rate and durations per window. */
export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    const name = ctx.params.name;
    const read = await Promise.all(
      WINDOWS.map(([window]) => ctx.state.tf.jobStats({ window, name })),
    );
    if (read.every((list) => list.length === 0)) return ctx.renderNotFound();
    return ctx.render({
      name,
      windows: WINDOWS.map(([window, label], i) => ({ window, label, stats: read[i][0] })),
    });
  },
};

export default function JobMetrics({ data }: PageProps<Data, DashboardState>) {
  const day = data.windows.find((w) => w.window === "24h")?.stats;
  const all = data.windows.find((w) => w.window === "all")?.stats;
  return (
    <>
      <h1>
        Metrics · <span class="mono">{data.name}</span>
      </h1>
      <p class="meta">
        <a href="/metrics/jobs">All job names</a> ·{" "}
        <a href={`/search?q=${encodeURIComponent(data.name)}`}>jobs named {data.name}</a>
        {all && all.durations.sumMs > 0 && (
          <>
            {" "}· mean attempt{" "}
            {duration(all.durations.sumMs / all.durations.counts.reduce((a, b) => a + b, 0))} over
            {" "}
            {count(all.durations.counts.reduce((a, b) => a + b, 0))} timed attempts
          </>
        )}
      </p>
      <table class="jobs metrics">
        <thead>
          <tr>
            <th>Window</th>
            <StatHeads />
          </tr>
        </thead>
        <tbody>
          {data.windows.map(({ window, label, stats }) => (
            <tr data-window={window}>
              <td>{label}</td>
              <StatCells stats={stats} />
            </tr>
          ))}
        </tbody>
      </table>
      {day && <DurationBars histogram={day.durations} label="attempt durations, last 24 hours" />}
    </>
  );
}
