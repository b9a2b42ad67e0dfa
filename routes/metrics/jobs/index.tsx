import type { Handlers, PageProps } from "../../../lib/fresh/types.ts";
import type { DashboardState } from "../../../lib/dashboard/state.ts";
import { type JobStats, STAT_WINDOWS, type StatWindow } from "../../../lib/mod.ts";
import { StatCells, StatHeads } from "../../../components/JobMetrics.tsx";

interface Data {
  window: StatWindow;
  /** Every job name that ever ran, with its statistics over the window (absent: none in it). */
  rows: Array<{ name: string; stats?: JobStats }>;
}

/** GET /metrics/jobs?window=1h|24h|7d|all: attempt statistics per job name. */
export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    const { tf } = ctx.state;
    const window = (ctx.url.searchParams.get("window") ?? "24h") as StatWindow;
    const [inWindow, ever] = await Promise.all([
      tf.jobStats({ window }),
      tf.jobStats({ window: "all" }),
    ]);
    const byName = new Map(inWindow.map((s) => [s.name, s]));
    return ctx.render({
      window,
      rows: ever.map(({ name }) => ({ name, stats: byName.get(name) })),
    });
  },
};

export default function JobMetricsList({ data }: PageProps<Data, DashboardState>) {
  return (
    <>
      <h1>Metrics</h1>
      <p class="meta">
        Attempts per job name, kept by the storage with every transition (pruned jobs included).
        {" "}
        Window: {(Object.keys(STAT_WINDOWS) as StatWindow[]).map((w) => (
          <>
            {" "}
            <a href={`/metrics/jobs?window=${w}`} class={w === data.window ? "active" : undefined}>
              {w}
            </a>
          </>
        ))}
      </p>
      {data.rows.length === 0
        ? <p class="empty">No job has run yet.</p>
        : (
          <table class="jobs metrics">
            <thead>
              <tr>
                <th>Job name</th>
                <StatHeads />
              </tr>
            </thead>
            <tbody>
              {data.rows.map(({ name, stats }) => (
                <tr data-name={name}>
                  <td>
                    <a href={`/metrics/jobs/${encodeURIComponent(name)}`}>{name}</a>
                  </td>
                  <StatCells stats={stats} />
                </tr>
              ))}
            </tbody>
          </table>
        )}
    </>
  );
}
