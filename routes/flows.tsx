import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import type { FlowStatus } from "../lib/mod.ts";
import { iso, relative } from "../components/format.ts";
import { FlowProgress } from "../components/Flows.tsx";

/** Every flow with its progress (newest first). */
export const handler: Handlers<FlowStatus[], DashboardState> = {
  async GET(_req, ctx) {
    return ctx.render(await ctx.state.tf.flows({ limit: 200 }));
  },
};

export default function Flows({ data }: PageProps<FlowStatus[], DashboardState>) {
  const now = Date.now();
  return (
    <>
      <h1>Flows</h1>
      {data.length === 0 ? <p class="empty">No flow yet.</p> : (
        <table class="jobs" data-flows>
          <thead>
            <tr>
              <th>Root</th>
              <th>Name</th>
              <th>Root state</th>
              <th>Progress</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {data.map((s) => (
              <tr key={s.flow.id} data-flow={s.flow.id}>
                <td class="mono">
                  <a href={`/job/${encodeURIComponent(s.flow.id)}`}>{s.flow.id}</a>
                </td>
                <td>{s.flow.name}</td>
                <td>
                  {s.flow.state === "creating"
                    ? <span class="reason">being created</span>
                    : (
                      <span class={`state ${(s.root ?? "").toLowerCase()}`}>
                        {s.root ?? "pruned"}
                      </span>
                    )}
                </td>
                <td>
                  <FlowProgress status={s} />
                </td>
                <td title={iso(s.flow.createdAt)}>{relative(s.flow.createdAt, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
