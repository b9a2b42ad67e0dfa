import type { Snapshot } from "../lib/dashboard/hub.ts";
import { BarChart } from "../components/Chart.tsx";
import { WaitChart } from "../components/TimeChart.tsx";
import { useLive } from "../components/live_store.ts";

const hourLabel = (at: number) => new Date(at).toISOString().slice(11, 16);
const dayLabel = (at: number) => new Date(at).toISOString().slice(5, 10);

/**
 * The overview's history: queue waits per minute (p50/p95, last hour), succeeded/failed per
 * hour (24 h) and per day (7 d), refreshed live as the hub reads them again.
 */
export default function HistoryCharts({ initial }: { initial: Snapshot }) {
  const { history } = useLive(initial);
  const minute = Math.floor(history.at / 60_000) * 60_000;
  return (
    <section class="history">
      <h2>Queue wait</h2>
      <WaitChart
        points={history.waits}
        from={minute - 59 * 60_000}
        to={minute + 60_000}
        label="time from enqueued to started, per minute, last hour (UTC)"
        format={hourLabel}
      />
      <h2>History</h2>
      <BarChart points={history.hours} label="last 24 hours, per hour (UTC)" format={hourLabel} />
      <BarChart points={history.days} label="last 7 days, per day (UTC)" format={dayLabel} />
    </section>
  );
}
