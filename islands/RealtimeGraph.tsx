import type { Snapshot } from "../lib/dashboard/hub.ts";
import { StackedTimeChart } from "../components/TimeChart.tsx";
import { useLive } from "../components/live_store.ts";

const clock = (at: number) => new Date(at).toISOString().slice(11, 19);

/**
 * Succeeded and failed jobs per second over the last minute, from the storage's second buckets
 * (so what ran while no page was open is there too), on a time axis, updated live.
 */
export default function RealtimeGraph({ initial }: { initial: Snapshot }) {
  const snapshot = useLive(initial);
  const { rate } = snapshot;
  return (
    <section class="realtime">
      <h2>
        Realtime{" "}
        <small>{rate.succeeded.toFixed(1)} succeeded/s · {rate.failed.toFixed(1)} failed/s</small>
      </h2>
      <StackedTimeChart
        points={snapshot.series}
        from={snapshot.seriesRange.from}
        to={snapshot.seriesRange.to}
        stepMs={1_000}
        tickMs={10_000}
        label="jobs per second, last minute (UTC)"
        unit="/s"
        format={clock}
      />
    </section>
  );
}
