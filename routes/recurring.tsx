import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import type { RecurringRecord } from "../storage/storage.ts";

export const handler: Handlers<RecurringRecord[], DashboardState> = {
  async GET(_req, ctx) {
    return ctx.render(await ctx.state.tf.storage.recurring.list());
  },
};

export default function Recurring({ data }: PageProps<RecurringRecord[], DashboardState>) {
  return (
    <>
      <h1>Recurring jobs</h1>
      {data.length === 0 ? <p class="empty">No recurring job is defined.</p> : (
        <table class="jobs">
          <thead>
            <tr>
              <th>Id</th>
              <th>Definition</th>
            </tr>
          </thead>
          <tbody>
            {data.map((r) => (
              <tr>
                <td class="mono">{r.id}</td>
                <td>
                  <pre class="json">{JSON.stringify(r, null, 2)}</pre>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
