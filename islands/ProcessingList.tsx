import type { Snapshot } from "../lib/dashboard/hub.ts";
import { relative } from "../components/format.ts";
import { orphanText } from "../lib/liveness.ts";
import { useLive } from "../components/live_store.ts";

/** The jobs running now, with their progress, updated live. */
export default function ProcessingList({ initial }: { initial: Snapshot }) {
  const snapshot = useLive(initial);
  const jobs = snapshot.processing;
  return (
    <section>
      <h2>Processing now</h2>
      {jobs.length === 0
        ? <p class="empty">Nothing is running.</p>
        : (
          <table class="jobs processing">
            <thead>
              <tr>
                <th>Id</th>
                <th>Name</th>
                <th>Queue</th>
                <th>Started</th>
                <th>Progress</th>
                <th>Server</th>
              </tr>
            </thead>
            <tbody>
              {jobs.map((job) => (
                <tr class={job.orphan ? "orphaned" : undefined}>
                  <td class="mono">
                    <a href={`/job/${encodeURIComponent(job.id)}`}>{job.id}</a>
                  </td>
                  <td>{job.name}</td>
                  <td>{job.queue}</td>
                  <td>{relative(job.stateAt, snapshot.at)}</td>
                  <td title={job.orphan ? "last reported before its server stopped" : undefined}>
                    {job.progress === undefined
                      ? "–"
                      : <progress max={100} value={job.progress}>{job.progress}%</progress>}
                  </td>
                  <td>
                    <span class="mono">{job.serverId ?? ""}</span>
                    {job.orphan && (
                      <span class="badge orphaned" data-orphan={job.id}>
                        {orphanText(job.orphan, snapshot.at)}
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
    </section>
  );
}
