import type { Handlers, PageProps } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import type { RecurringJob } from "../lib/recurring.ts";
import { InvalidOptionError } from "../lib/mod.ts";
import { Csrf } from "../components/Jobs.tsx";
import { iso, plural, relative } from "../components/format.ts";
import { seeOther } from "../components/problem.ts";

interface Data {
  definitions: RecurringJob[];
  done?: string;
}

const ACTIONS = ["trigger", "pause", "resume", "delete"] as const;
type RecurringAction = typeof ACTIONS[number];

export const handler: Handlers<Data, DashboardState> = {
  async GET(_req, ctx) {
    return ctx.render({
      definitions: await ctx.state.tf.recurring.list(),
      done: ctx.url.searchParams.get("done") ?? undefined,
    });
  },
  async POST(req, ctx) {
    const form = await req.formData();
    const id = form.get("id");
    const action = form.get("action") as RecurringAction;
    if (typeof id !== "string") throw new InvalidOptionError("id", id, "name a recurring job");
    if (!ACTIONS.includes(action)) {
      throw new InvalidOptionError("action", action, `must be one of ${ACTIONS.join(", ")}`);
    }
    const { recurring } = ctx.state.tf;
    let done: string;
    if (action === "trigger") done = `Triggered ${id}: job ${await recurring.trigger(id)}.`;
    else if (action === "pause") done = (await recurring.pause(id), `Paused ${id}.`);
    else if (action === "resume") done = (await recurring.resume(id), `Resumed ${id}.`);
    else done = (await recurring.remove(id), `Deleted ${id}.`);
    return seeOther("/recurring", done);
  },
};

export default function Recurring({ data, state }: PageProps<Data, DashboardState>) {
  const now = Date.now();
  const readOnly = state.security.readOnly;
  return (
    <>
      <h1>Recurring jobs</h1>
      {data.done && <p class="notice">{data.done}</p>}
      {data.definitions.length === 0
        ? <p class="empty">No recurring job is defined.</p>
        : (
          <table class="jobs">
            <thead>
              <tr>
                <th>Id</th>
                <th>Cron</th>
                <th>Job</th>
                <th>Next run</th>
                <th>Last run</th>
                <th>History</th>
                {!readOnly && <th>Actions</th>}
              </tr>
            </thead>
            <tbody>
              {data.definitions.map(displayable).map((r) => (
                <tr key={r.id}>
                  <td class="mono">
                    {r.id}
                    {r.paused && <span class="badge">paused</span>}
                    {r.lastError && (
                      <>
                        <span class="badge broken">error</span>
                        <br />
                        <span class="reason broken">
                          skipped since {iso(r.lastError.at)}: {r.lastError.message}
                          {r.lastError.code && ` (${r.lastError.code})`}
                        </span>
                      </>
                    )}
                  </td>
                  <td class="mono">
                    {r.cron}
                    <br />
                    <span class="reason">{r.timezone} · misfire {r.misfire}</span>
                  </td>
                  <td>
                    {r.name}
                    <br />
                    <span class="reason">queue {r.options.queue ?? "default"}</span>
                  </td>
                  <td title={iso(r.nextRun)}>
                    {r.paused ? "paused" : r.nextRun ? relative(r.nextRun, now) : "never"}
                  </td>
                  <td>
                    {r.lastRun
                      ? <span title={iso(r.lastRun)}>{relative(r.lastRun, now)}</span>
                      : "never"}
                    {r.lastJobId && (
                      <>
                        <br />
                        <a class="mono" href={`/job/${encodeURIComponent(r.lastJobId)}`}>
                          {r.lastJobId}
                        </a>
                      </>
                    )}
                  </td>
                  <td>
                    <details>
                      <summary>{plural(r.history.length, "run")}</summary>
                      <ul class="history">
                        {r.history.map((h) => (
                          <li key={h.jobId}>
                            <a class="mono" href={`/job/${encodeURIComponent(h.jobId)}`}>
                              {iso(h.at)}
                            </a>{" "}
                            ({h.by})
                          </li>
                        ))}
                      </ul>
                    </details>
                  </td>
                  {!readOnly && (
                    <td>
                      <form method="post" action="/recurring" class="actions">
                        <Csrf token={state.csrf} />
                        <input type="hidden" name="id" value={r.id} />
                        <button type="submit" name="action" value="trigger">Trigger now</button>
                        {r.paused
                          ? <button type="submit" name="action" value="resume">Resume</button>
                          : <button type="submit" name="action" value="pause">Pause</button>}
                        <button type="submit" name="action" value="delete" class="danger">
                          Delete
                        </button>
                      </form>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
    </>
  );
}

/** A stored field as text, whatever a damaged record holds there. */
function text(value: unknown): string {
  return typeof value === "string" ? value : value === undefined ? "—" : JSON.stringify(value);
}

/**
 * A definition safe to render: a damaged record (wrong field types, marked broken by the
 * scheduler) still gets its row, so it can be seen and deleted.
 */
function displayable(r: RecurringJob): RecurringJob {
  const time = (t: unknown) => typeof t === "number" && Number.isFinite(t) ? t : undefined;
  return {
    ...r,
    cron: text(r.cron),
    timezone: text(r.timezone),
    misfire: text(r.misfire) as RecurringJob["misfire"],
    name: text(r.name),
    options: typeof r.options === "object" && r.options !== null ? r.options : {},
    nextRun: time(r.nextRun),
    lastRun: time(r.lastRun),
    lastJobId: typeof r.lastJobId === "string" ? r.lastJobId : undefined,
    history: Array.isArray(r.history)
      ? r.history.filter((h) => typeof h?.jobId === "string" && typeof h.at === "number")
      : [],
  };
}
