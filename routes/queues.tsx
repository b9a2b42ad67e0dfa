import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import type { JobRecord } from "../lib/job.ts";
import { STATES } from "../lib/states.ts";
import type { Counts } from "../storage/storage.ts";
import { count, iso, relative } from "../components/format.ts";

interface Data {
  queues: Array<{ name: string; counts: Counts["queues"][string]; oldest?: JobRecord }>;
}

export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    const { tf } = ctx.state;
    const counts = await tf.counts();
    const names = Object.keys(counts.queues).sort();
    const heads = await Promise.all(names.map((queue) => tf.list({ queue, limit: 1 })));
    return ctx.render({
      queues: names.map((name, i) => ({
        name,
        counts: counts.queues[name],
        oldest: heads[i].jobs[0],
      })),
    });
  },
};

export default function Queues({ data }: PageProps<Data, DashboardState>) {
  const now = Date.now();
  return (
    <>
      <h1>Queues</h1>
      {data.queues.length === 0
        ? <p class="empty">No queue has had a job yet.</p>
        : (
          <table class="jobs">
            <thead>
              <tr>
                <th>Queue</th>
                <th>Length (Enqueued)</th>
                <th>Next to run</th>
                {STATES.filter((s) => s !== "Enqueued").map((s) => <th key={s}>{s}</th>)}
              </tr>
            </thead>
            <tbody>
              {data.queues.map((q) => (
                <tr>
                  <td>{q.name}</td>
                  <td>{count(q.counts.Enqueued)}</td>
                  <td>
                    {q.oldest
                      ? (
                        <a
                          href={`/job/${encodeURIComponent(q.oldest.id)}`}
                          title={iso(q.oldest.stateAt)}
                        >
                          {q.oldest.name}, waiting{" "}
                          {relative(q.oldest.stateAt, now).replace(" ago", "")}
                        </a>
                      )
                      : "–"}
                  </td>
                  {STATES.filter((s) => s !== "Enqueued").map((s) => (
                    <td key={s}>{count(q.counts[s])}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        )}
    </>
  );
}
