import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import type { Snapshot } from "../lib/dashboard/hub.ts";
import type { StoredRetention } from "../lib/mod.ts";
import { plural } from "../components/format.ts";
import LiveCounters from "../islands/LiveCounters.tsx";
import RealtimeGraph from "../islands/RealtimeGraph.tsx";
import HistoryCharts from "../islands/HistoryCharts.tsx";
import ProcessingList from "../islands/ProcessingList.tsx";
import { RetentionSummary } from "../components/Retention.tsx";

interface Data {
  snapshot: Snapshot;
  recurring: number;
  /** The retention policy in force with the last pruning passes (null before a worker ran). */
  retention: StoredRetention | null;
  /** The client's clock when the page was read. */
  now: number;
}

export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    const { tf, hub } = ctx.state;
    const [snapshot, recurring, retention] = await Promise.all([
      hub.snapshot(),
      tf.recurring.list(),
      tf.retention(),
    ]);
    return ctx.render({
      snapshot,
      recurring: recurring.length,
      retention,
      now: tf.now(),
    });
  },
};

export default function Overview({ data }: PageProps<Data, DashboardState>) {
  return (
    <>
      <h1>Overview</h1>
      <LiveCounters initial={data.snapshot} />
      <p class="meta">
        <a href="/recurring">{plural(data.recurring, "recurring job")}</a> ·{" "}
        <a href="/retries" data-retries>
          {plural(data.snapshot.counts.retrying, "retry", "retries")}
        </a>{" "}
        · <a href="/queues">{plural(Object.keys(data.snapshot.counts.queues).length, "queue")}</a>
      </p>
      <RetentionSummary
        retention={data.retention}
        servers={data.snapshot.servers}
        now={data.now}
      />
      <RealtimeGraph initial={data.snapshot} />
      <HistoryCharts initial={data.snapshot} />
      <ProcessingList initial={data.snapshot} />
    </>
  );
}
