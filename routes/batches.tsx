import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import type { BatchStatus } from "../lib/batch.ts";
import { iso, relative } from "../components/format.ts";
import { Progress } from "../components/Batch.tsx";

/** Every batch with its progress (newest first). */
export const handler: Handlers<BatchStatus[], DashboardState> = {
  async GET(_req, ctx) {
    return ctx.render(await ctx.state.tf.batches({ limit: 200 }));
  },
};

export default function Batches({ data }: PageProps<BatchStatus[], DashboardState>) {
  const now = Date.now();
  return (
    <>
      <h1>Batches</h1>
      {data.length === 0 ? <p class="empty">No batch yet.</p> : (
        <table class="jobs">
          <thead>
            <tr>
              <th>Id</th>
              <th>State</th>
              <th>Progress</th>
              <th>Created</th>
              <th>Continuation</th>
            </tr>
          </thead>
          <tbody>
            {data.map((s) => (
              <tr key={s.batch.id}>
                <td class="mono">
                  <a href={`/batch/${encodeURIComponent(s.batch.id)}`}>{s.batch.id}</a>
                </td>
                <td>{s.batch.state}</td>
                <td>
                  <Progress status={s} />
                </td>
                <td title={iso(s.batch.createdAt)}>{relative(s.batch.createdAt, now)}</td>
                <td class="mono">
                  {s.batch.thenId
                    ? <a href={`/job/${encodeURIComponent(s.batch.thenId)}`}>{s.batch.thenId}</a>
                    : "–"}
                  {s.batch.thenId && <span class="reason">{` on ${s.batch.on}`}</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
