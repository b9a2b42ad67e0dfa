import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import type { Snapshot } from "../lib/dashboard/hub.ts";
import type { StoredRetention, TimelinePoint } from "../lib/mod.ts";
import { BarChart } from "../components/Chart.tsx";
import { plural } from "../components/format.ts";
import LiveCounters from "../islands/LiveCounters.tsx";
import RealtimeGraph from "../islands/RealtimeGraph.tsx";
import ProcessingList from "../islands/ProcessingList.tsx";
import { RetentionSummary } from "../components/Retention.tsx";

interface Data {
  snapshot: Snapshot;
  hours: TimelinePoint[];
  days: TimelinePoint[];
  recurring: number;
  /** The retention policy in force with the last pruning passes (null before a worker ran). */
  retention: StoredRetention | null;
  /** The client's clock when the page was read. */
  now: number;
}

const HOUR = 3_600_000, DAY = 86_400_000;

export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    const { tf, hub } = ctx.state;
    const now = Date.now();
    const [snapshot, hourly, recurring, retention] = await Promise.all([
      hub.snapshot(),
      tf.timeline("hour", { from: now - 7 * DAY + HOUR, to: now }),
      tf.recurring.list(),
      tf.retention(),
    ]);
    const hours = hourly.slice(-24);
    const days: TimelinePoint[] = [];
    for (const point of hourly) {
      const at = Math.floor(point.at / DAY) * DAY;
      const day = days.at(-1)?.at === at
        ? days.at(-1)!
        : (days.push({ at, succeeded: 0, failed: 0 }), days.at(-1)!);
      day.succeeded += point.succeeded;
      day.failed += point.failed;
    }
    return ctx.render({
      snapshot,
      hours,
      days,
      recurring: recurring.length,
      retention,
      now: tf.now(),
    });
  },
};

const hourLabel = (at: number) => new Date(at).toISOString().slice(11, 16);
const dayLabel = (at: number) => new Date(at).toISOString().slice(5, 10);

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
      <section class="history">
        <h2>History</h2>
        <BarChart points={data.hours} label="last 24 hours, per hour (UTC)" format={hourLabel} />
        <BarChart points={data.days} label="last 7 days, per day (UTC)" format={dayLabel} />
      </section>
      <ProcessingList initial={data.snapshot} />
    </>
  );
}
