import type { Snapshot } from "../lib/dashboard/hub.ts";
import { LineChart } from "../components/Chart.tsx";
import { useLive } from "../components/live_store.ts";

/** Succeeded and failed jobs per second over the last minute, updated live. */
export default function RealtimeGraph({ initial }: { initial: Snapshot }) {
  const snapshot = useLive(initial);
  const { rate } = snapshot;
  return (
    <section>
      <h2>
        Realtime{" "}
        <small>{rate.succeeded.toFixed(1)} succeeded/s · {rate.failed.toFixed(1)} failed/s</small>
      </h2>
      <LineChart points={snapshot.series} label="jobs per second, last minute" />
    </section>
  );
}
