import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import type { ServerInfo } from "../lib/mod.ts";
import { iso, relative } from "../components/format.ts";

export const handler: Handlers<ServerInfo[], DashboardState> = {
  async GET(_req, ctx) {
    const servers = await ctx.state.tf.servers();
    return ctx.render(servers.sort((a, b) => a.id < b.id ? -1 : 1));
  },
};

export default function Servers({ data }: PageProps<ServerInfo[], DashboardState>) {
  const now = Date.now();
  return (
    <>
      <h1>Servers</h1>
      {data.length === 0 ? <p class="empty">No worker is running.</p> : (
        <table class="jobs">
          <thead>
            <tr>
              <th>Id</th>
              <th>Host</th>
              <th>Queues</th>
              <th>Concurrency</th>
              <th>In flight</th>
              <th>Started</th>
              <th>Last heartbeat</th>
            </tr>
          </thead>
          <tbody>
            {data.map((s) => (
              <tr>
                <td class="mono">{s.id}</td>
                <td>{s.hostname} (pid {s.pid})</td>
                <td>{s.queues.join(", ")}</td>
                <td>{s.concurrency}</td>
                <td>{s.inFlight}</td>
                <td title={iso(s.startedAt)}>{relative(s.startedAt, now)}</td>
                <td title={iso(s.lastSeen)}>{relative(s.lastSeen, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
